"""Classifier → fully convolutional net (Section 3.1): the FCN base weights.

Any classifier whose InnerProduct layers follow spatial blobs converts: the first such layer
becomes a convolution whose kernel covers its input's whole spatial extent, later ones 1×1
convolutions; the weights are the same numbers, reshaped; names are kept. So VGG16's fc6
(4096×25088) becomes a 7×7 convolution over pool5, as the FCN nets declare it. Listed layers
(the 1000-way fc8) and whatever depends on them are dropped.

    python -m surgery.convert DEPLOY CAFFEMODEL OUT.caffemodel [--drop fc8]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import caffe
from caffe.proto import caffe_pb2

from nets.prototxt import to_prototxt
from surgery.transplant import Report, transplant
from surgery.weights import load_weights, read_caffemodel, read_prototxt


def fully_convolutional(classifier: caffe_pb2.NetParameter, blob_shapes: dict,
                        drop: tuple[str, ...]) -> caffe_pb2.NetParameter:
    """The classifier's definition with InnerProduct → Convolution and `drop` removed."""
    fcn = caffe_pb2.NetParameter()
    fcn.CopyFrom(classifier)
    del fcn.layer[:]
    dropped_tops: set[str] = set()
    for layer in classifier.layer:
        if layer.name in drop or dropped_tops & set(layer.bottom):
            dropped_tops.update(t for t in layer.top if t not in layer.bottom)
            continue
        new = fcn.layer.add()
        new.CopyFrom(layer)
        if layer.type != "InnerProduct":
            continue
        shape = blob_shapes[layer.bottom[0]]
        kh, kw = (shape[2], shape[3]) if len(shape) == 4 else (1, 1)
        new.type = "Convolution"
        new.ClearField("inner_product_param")
        conv = new.convolution_param
        conv.num_output = layer.inner_product_param.num_output
        conv.bias_term = layer.inner_product_param.bias_term
        if kh == kw:
            conv.kernel_size.append(kh)
        else:
            conv.kernel_h, conv.kernel_w = kh, kw
    return fcn


def convolutionalize(deploy: Path | str, caffemodel: Path | str, out_caffemodel: Path | str,
                     *, out_prototxt: Path | str | None = None,
                     drop: tuple[str, ...] = ("fc8",)) -> Report:
    """Convert a classifier (deploy prototxt + caffemodel, V1 or V2) into FCN weights.

    Writes out_caffemodel and its fully convolutional definition (out_prototxt, default
    beside it with .prototxt); returns the transplant report.
    """
    definition = read_prototxt(deploy)
    params = read_caffemodel(caffemodel, values=False)
    with _as_file(definition) as path:
        classifier = caffe.Net(path, caffe.TEST)
    missing = [name for name in classifier.params if name not in params]
    if missing:
        raise ValueError(f"{caffemodel}: no weights for {missing}; wrong caffemodel for {deploy}?")
    load_weights(classifier, caffemodel)
    shapes = {name: blob.data.shape for name, blob in classifier.blobs.items()}
    fcn_definition = fully_convolutional(definition, shapes, tuple(drop))
    out_caffemodel = Path(out_caffemodel)
    out_prototxt = Path(out_prototxt or out_caffemodel.with_suffix(".prototxt"))
    out_prototxt.parent.mkdir(parents=True, exist_ok=True)
    out_prototxt.write_text(to_prototxt(fcn_definition))
    fcn = caffe.Net(str(out_prototxt), caffe.TEST)
    kept = {k: [b.data for b in v] for k, v in classifier.params.items() if k not in drop}
    report = transplant(fcn, kept)
    report.dropped += [d for d in drop if d in params]
    fcn.save(str(out_caffemodel))
    return report


class _as_file:
    """A NetParameter written to a temporary prototxt for caffe.Net."""

    def __init__(self, net: caffe_pb2.NetParameter):
        import tempfile

        self.tmp = tempfile.NamedTemporaryFile("w", suffix=".prototxt", delete=False)
        self.tmp.write(to_prototxt(net))
        self.tmp.close()

    def __enter__(self) -> str:
        return self.tmp.name

    def __exit__(self, *exc) -> None:
        Path(self.tmp.name).unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("deploy", type=Path, help="classifier deploy prototxt (V1 or V2)")
    parser.add_argument("caffemodel", type=Path, help="classifier weights")
    parser.add_argument("out", type=Path, help="FCN base caffemodel to write")
    parser.add_argument("--drop", nargs="*", default=["fc8"],
                        help="layers to leave out (default: fc8)")
    args = parser.parse_args(argv)
    try:
        convolutionalize(args.deploy, args.caffemodel, args.out, drop=tuple(args.drop))
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
