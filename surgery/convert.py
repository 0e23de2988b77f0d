"""Classifier → fully convolutional net (Section 3.1): the FCN base weights.

Any classifier whose InnerProduct layers follow spatial blobs converts: the first such layer
becomes a convolution whose kernel covers its input's whole spatial extent, later ones 1×1
convolutions; the weights are the same numbers, reshaped; names are kept. So VGG16's fc6
(4096×25088) becomes a 7×7 convolution over pool5, as the FCN nets declare it. Listed layers
(the 1000-way fc8) and whatever reads them are dropped. V1 and V2 files are accepted.

    python -m surgery.convert DEPLOY CAFFEMODEL OUT.caffemodel [--drop fc8 prob]
        [--check nets/voc-fcn32s/deploy.prototxt]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import caffe
from caffe.proto import caffe_pb2

from core.caffe_files import (
    as_file,
    check_buildable,
    check_builds,
    check_fits,
    params_of,
    read_caffemodel,
    read_prototxt,
    write_prototxt,
)
from core.errors import cli_main
from surgery.definition import data_layers, with_batch_one, without_fillers
from surgery.errors import SurgeryError
from surgery.transplant import Report, transplant


def fully_convolutional(classifier: caffe_pb2.NetParameter,
                        blob_shapes: dict[str, tuple[int, ...]],
                        drop: tuple[str, ...] = ()) -> caffe_pb2.NetParameter:
    """The classifier's definition with every InnerProduct a Convolution (kernel = the
    spatial size of its input blob, `blob_shapes` as Caffe computed them; 1×1 after a
    non-spatial blob) and the `drop` layers, and layers reading their outputs, removed."""
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
        if layer.type == "InnerProduct":
            _to_convolution(new, blob_shapes[layer.bottom[0]])
    return fcn


def _to_convolution(layer: caffe_pb2.LayerParameter, bottom_shape: tuple[int, ...]) -> None:
    ip = layer.inner_product_param
    if ip.axis != 1 or ip.transpose:
        raise SurgeryError(f"layer {layer.name}: an InnerProduct with axis {ip.axis} or "
                           f"transposed weights has no convolution equivalent here")
    if len(bottom_shape) == 4:
        kh, kw = bottom_shape[2:]
    elif len(bottom_shape) == 2:
        kh = kw = 1
    else:
        raise SurgeryError(f"layer {layer.name}: input of shape {bottom_shape} is neither "
                           f"N×C×H×W nor N×C")
    conv = caffe_pb2.ConvolutionParameter(num_output=ip.num_output, bias_term=ip.bias_term)
    for filler in ("weight_filler", "bias_filler"):
        if ip.HasField(filler):
            getattr(conv, filler).CopyFrom(getattr(ip, filler))
    if kh == kw:
        conv.kernel_size.append(kh)
    else:
        conv.kernel_h, conv.kernel_w = kh, kw
    layer.type = "Convolution"
    layer.ClearField("inner_product_param")
    layer.convolution_param.CopyFrom(conv)


def convolutionalize(deploy: Path | str, caffemodel: Path | str, out_caffemodel: Path | str,
                     *, out_prototxt: Path | str | None = None,
                     drop: tuple[str, ...] = ("fc8",),
                     check_against: Path | str | None = None,
                     verbose: bool = True) -> Report:
    """Convert a classifier (deploy prototxt + caffemodel, each V1 or V2) into FCN weights.

    Writes `out_caffemodel` and its fully convolutional definition (`out_prototxt`, default
    beside it with .prototxt). `drop`: layers to leave out (each must exist). With
    `check_against` (an FCN net definition such as nets/voc-fcn32s/deploy.prototxt) every
    converted layer that net names must fit it exactly. Returns the transplant report, with
    the dropped layers; every layer of the FCN definition is filled, or SurgeryError.
    """
    deploy, caffemodel = Path(deploy), Path(caffemodel)
    definition = with_batch_one(read_prototxt(deploy))
    unknown = [name for name in drop if name not in {layer.name for layer in definition.layer}]
    if unknown:
        raise SurgeryError(f"{deploy}: no layer {unknown} to drop; its layers are "
                           f"{[layer.name for layer in definition.layer]}")
    readers = data_layers(definition)
    if readers:
        raise SurgeryError(f"{deploy}: reads data through {readers}; give the deploy "
                           f"definition (an Input layer)")
    check_buildable(definition, str(deploy))
    weights = read_caffemodel(caffemodel)
    shapes_in_file = {name: layer for name, layer in weights.items() if layer.blobs}
    if not shapes_in_file:
        raise SurgeryError(f"{caffemodel}: no layer with weights (empty or truncated "
                           f"caffemodel?)")
    with as_file(without_fillers(definition)) as path:
        check_builds(path, str(deploy))   # an InnerProduct's axis out of range, … : an abort
        classifier = caffe.Net(path, caffe.TEST)
    missing = [name for name in classifier.params if name not in shapes_in_file]
    if missing:
        raise SurgeryError(f"{caffemodel} has no weights for {missing} of {deploy}: wrong "
                           f"prototxt for these weights?")
    check_fits(classifier, shapes_in_file, str(caffemodel))
    blob_shapes = {name: tuple(blob.data.shape) for name, blob in classifier.blobs.items()}
    del classifier

    fcn_definition = fully_convolutional(definition, blob_shapes, tuple(drop))
    out_caffemodel = Path(out_caffemodel)
    out_prototxt = write_prototxt(fcn_definition,
                                  out_prototxt or out_caffemodel.with_suffix(".prototxt"))
    with as_file(without_fillers(fcn_definition)) as path:
        fcn = caffe.Net(path, caffe.TEST)
    report = transplant(fcn, params_of(weights), verbose=verbose)
    del weights
    if report.left_at_init:
        raise SurgeryError(f"{caffemodel}: no weights for {report.left_at_init} of the "
                           f"converted net")
    if check_against is not None:
        check_base_fits(fcn, check_against, verbose=verbose)
    out_caffemodel.parent.mkdir(parents=True, exist_ok=True)
    fcn.save(str(out_caffemodel))
    return report


def check_base_fits(base, fcn_prototxt: Path | str, *, verbose: bool = True) -> list[str]:
    """Raise unless the FCN net `fcn_prototxt` can start from caffe.Net `base`: it shares
    layers with it and every shared layer has the same blob shapes. Returns the FCN's layers
    the base does not provide (its score and upsampling layers, for a matching backbone)."""
    definition = read_prototxt(fcn_prototxt)
    check_buildable(definition, str(fcn_prototxt))
    with as_file(without_fillers(with_batch_one(definition))) as path:
        check_builds(path, str(fcn_prototxt))
        target = caffe.Net(path, caffe.TEST)
    shared = [name for name in target.params if name in base.params]
    if not shared:
        raise SurgeryError(f"{fcn_prototxt} shares no layer name with the converted net; "
                           f"a different backbone?")
    for name in shared:
        got = [b.data.shape for b in base.params[name]]
        want = [b.data.shape for b in target.params[name]]
        if got != want:
            raise SurgeryError(f"{fcn_prototxt}: layer {name} has blobs {want}, the "
                               f"converted net {got}")
    fresh = [name for name in target.params if name not in base.params]
    if verbose:
        print(f"{fcn_prototxt}: {len(shared)} layers from these weights; to initialise "
              f"there: {', '.join(fresh) or 'none'}")
    return fresh


@cli_main("surgery-convert")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m surgery.convert",
        description=__doc__.splitlines()[0],
        epilog="Writes OUT and its definition OUT with .prototxt; prints the report.")
    parser.add_argument("deploy", type=Path, help="classifier deploy prototxt (V1 or V2)")
    parser.add_argument("caffemodel", type=Path, help="classifier weights (V1 or V2)")
    parser.add_argument("out", type=Path, help="FCN base caffemodel to write")
    parser.add_argument("--drop", nargs="*", default=["fc8"],
                        help="layers to leave out, with what reads them (default: fc8)")
    parser.add_argument("--check", type=Path, metavar="FCN_PROTOTXT",
                        help="an FCN definition the result must fit (e.g. "
                             "nets/voc-fcn32s/deploy.prototxt)")
    args = parser.parse_args(argv)
    convolutionalize(args.deploy, args.caffemodel, args.out, drop=tuple(args.drop),
                     check_against=args.check)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
