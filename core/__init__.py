"""The bottom of the project: facts and file formats every other area reads.

`catalog` (the datasets: classes, heads, means, void, split files, data layers),
`caffe_files` (caffemodel and prototxt reading, the checks that run before Caffe could
abort), `geometry` (Caffe's layer arithmetic: windows, crop offsets, output sizes,
parameter counts), `blas` (the ctypes binding of the BLAS Caffe links), `images` (the one
input preprocessing), `palette` (VOC colours), `download` (checked HTTP downloads).
Nothing here imports another area of the project.
"""
