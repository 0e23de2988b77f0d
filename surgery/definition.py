"""Net definitions for surgery: rewritten copies of a classifier's definition.

Reading, writing and checking prototxt (V1 files upgraded by Caffe's own tool) is
core.caffe_files'; here are the edits surgery makes to a definition before Caffe builds it.
"""

from __future__ import annotations

from caffe.proto import caffe_pb2

# Layer types that read a dataset while Caffe builds the net.
DATA_LAYER_TYPES = ("Data", "ImageData", "HDF5Data", "WindowData", "MemoryData", "Python")


def with_batch_one(net: caffe_pb2.NetParameter) -> caffe_pb2.NetParameter:
    """A copy whose Input layers give batch 1 (deploy files say 10; weights do not care)."""
    out = caffe_pb2.NetParameter()
    out.CopyFrom(net)
    for layer in out.layer:
        if layer.type == "Input":
            for shape in layer.input_param.shape:
                if shape.dim:
                    shape.dim[0] = 1
    return out


def data_layers(net: caffe_pb2.NetParameter) -> list[str]:
    """Layers that would read a dataset while the net is built (no bottoms, a data type)."""
    return [f"{layer.name} ({layer.type})" for layer in net.layer
            if layer.type in DATA_LAYER_TYPES and not layer.bottom]


def without_fillers(net: caffe_pb2.NetParameter) -> caffe_pb2.NetParameter:
    """A copy with every filler removed: instantiating it only zeroes the parameters, where
    random fillers would spend seconds on values that are overwritten anyway (VGG16: 138M)."""
    out = caffe_pb2.NetParameter()
    out.CopyFrom(net)
    for layer in out.layer:
        for field in ("convolution_param", "inner_product_param", "scale_param",
                      "bias_param", "embed_param", "prelu_param"):
            if layer.HasField(field):
                param = getattr(layer, field)
                for filler in ("weight_filler", "bias_filler", "filler"):
                    if filler in param.DESCRIPTOR.fields_by_name:
                        param.ClearField(filler)
    return out
