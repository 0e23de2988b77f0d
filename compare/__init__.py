"""Bit-for-bit comparison of Caffe artifacts: prototxt, caffemodels, forward passes, label
images, and the release check (the release's demo image through voc-fcn8s, as its
infer.py computes it). `python -m compare.cli A B` / `make compare`."""
