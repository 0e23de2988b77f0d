"""Model-zoo export and import, bit-for-bit comparison, and the release check.

Every entry point takes paths (prototxt, caffemodel, logs, images), so the package works on
whatever nets/, surgery/ and training/ produce, and on the original release's files.
"""
