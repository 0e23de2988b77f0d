"""The model zoo: export a trained net in the zoo's layout (readme front matter, deploy
prototxt, caffemodel with its sha1), serve it, fetch it back with its digest checked, and
run Caffe's own downloader on it. Comparing what comes back is compare/'s.
"""
