"""The bottom of the project: facts and file formats every other area reads.

`catalog` (the datasets: classes, heads, means, void, folders, file layouts, data layers),
`defaults` (repository root, data and runs folders, seed, test interval, Caffe's log level),
`weights` (a caffemodel's record: experiment, width, mean, digest, source; weight paths),
`caffe_files` (caffemodel and prototxt reading, the checks that run before Caffe could
abort), `geometry` (Caffe's layer arithmetic: windows, crop offsets, output sizes,
parameter counts), `memory` (the column buffer the recipe's Caffe asks for, a process's
own peak RSS), `blas` (the ctypes binding of the BLAS Caffe links), `images` (the one
input preprocessing), `palette` (VOC colours), `download` (checked HTTP downloads),
`errors` (the one way an entry point fails: ReportedError and cli_main).
Nothing here imports another area of the project.
"""
