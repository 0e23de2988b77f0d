"""A net around one data layer, the way the experiments declare it (for tests and timing).

Needs layers/ on sys.path, as Caffe imports the layer modules by their top-level names.
"""

from __future__ import annotations

from pathlib import Path


def data_layer_net(prototxt: Path, module: str, layer: str, param_str: str,
                   tops: list[str], *, phase: str = "test", conv_outputs: int = 0):
    """Write and load a net whose only input is the Python data layer `module.layer`.

    `conv_outputs` > 0 adds a 3×3 convolution on the first top, standing in for the work
    Caffe does between two forwards (what prefetching overlaps with).
    """
    import caffe
    from caffe import layers as L

    n = caffe.NetSpec()
    outputs = L.Python(module=module, layer=layer, param_str=param_str, ntop=len(tops))
    for name, blob in zip(tops, outputs if len(tops) > 1 else [outputs]):
        n[name] = blob
    if conv_outputs:
        n.work = L.Convolution(n[tops[0]], num_output=conv_outputs, kernel_size=3, pad=1,
                               weight_filler=dict(type="gaussian", std=0.01))
    Path(prototxt).write_text(str(n.to_proto()))
    return caffe.Net(str(prototxt), caffe.TRAIN if phase == "train" else caffe.TEST)
