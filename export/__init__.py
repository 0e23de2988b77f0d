"""FCNs out of Caffe: ONNX and PyTorch exports, each verified against Caffe's forward pass.

graph.py reads a deploy net into plain operations (Caffe's semantics decided once);
onnx_export.py and torch_export.py write them; verify.py compares with Caffe; cli.py is
the shared command line.
"""
