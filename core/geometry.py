"""Caffe's layer arithmetic, read once: windows, crop offsets, output sizes, parameters.

Every module that reasons about a net's geometry (tiling's reach and memory, the exporters,
Table 1's receptive fields, the paper plan's parameter counts) reads a layer through these
functions, so each of Caffe's rules lives in one place, as pycaffe's coord_map.py keeps
its per-layer maps. The rules are those of Caffe's C++ layers (base_conv_layer.cpp,
pooling_layer.cpp, crop_layer.cpp), including the fields they prefer when both spellings
are given. Nothing here imports Caffe: a layer comes in as its parsed protobuf message.
"""

from __future__ import annotations

from dataclasses import dataclass

Pair = tuple[int, int]   # (height, width)
WINDOW_TYPES = ("Convolution", "Deconvolution", "Pooling")


@dataclass(frozen=True)
class Window:
    """A layer's sliding window along (height, width)."""
    kernel: Pair
    stride: Pair
    pad: Pair
    dilation: Pair = (1, 1)


def _repeated(values, field: str, default: int) -> Pair:
    """A repeated spatial field: none gives the default, one is broadcast, else one per axis."""
    values = list(values)
    if not values:
        return (default, default)
    if len(values) == 1:
        return (values[0], values[0])
    if len(values) != 2:
        raise ValueError(f"{field}: {len(values)} values for 2 spatial axes")
    return (values[0], values[1])


def _conv_pair(param, field: str, default: int) -> Pair:
    """A ConvolutionParameter field as Caffe reads it: `<field>_h`/`_w` when either is set,
    else the repeated `<field>` (kernel_size for the kernel)."""
    if param.HasField(f"{field}_h") or param.HasField(f"{field}_w"):
        return (getattr(param, f"{field}_h"), getattr(param, f"{field}_w"))
    repeated = "kernel_size" if field == "kernel" else field
    return _repeated(getattr(param, repeated), repeated, default)


def conv_window(param) -> Window:
    """A ConvolutionParameter's window (also a Deconvolution's): defaults 1/1/0/1."""
    return Window(kernel=_conv_pair(param, "kernel", 1),
                  stride=_conv_pair(param, "stride", 1),
                  pad=_conv_pair(param, "pad", 0),
                  dilation=_repeated(param.dilation, "dilation", 1))


def pool_window(param) -> Window:
    """A PoolingParameter's window: kernel_size or kernel_h/_w; pad and stride from their
    _h/_w fields when pad_h/stride_h is set, else the single field (defaults 0 and 1). A
    global pooling's window is the whole input, known only from a shape: ValueError."""
    if param.global_pooling:
        raise ValueError("global pooling: the window is the whole input")
    kernel = ((param.kernel_size,) * 2 if param.HasField("kernel_size")
              else (param.kernel_h, param.kernel_w))
    pad = (param.pad_h, param.pad_w) if param.HasField("pad_h") else (param.pad,) * 2
    stride = ((param.stride_h, param.stride_w) if param.HasField("stride_h")
              else (param.stride,) * 2)
    return Window(kernel=kernel, stride=stride, pad=pad)


def window(layer) -> Window:
    """The window of a Convolution, Deconvolution or (non-global) Pooling layer."""
    if layer.type == "Pooling":
        return pool_window(layer.pooling_param)
    if layer.type in ("Convolution", "Deconvolution"):
        return conv_window(layer.convolution_param)
    raise ValueError(f"layer {layer.name!r} ({layer.type}) has no window")


def ceil_mode(param) -> bool:
    """Whether a PoolingParameter rounds its output size up (Caffe's default, CEIL)."""
    return param.round_mode == param.CEIL


def crop_offsets(param, rank: int = 4) -> tuple[int, tuple[int, ...]]:
    """A CropParameter's (first cropped axis, one offset per axis from it on) for a blob
    of `rank` axes: one offset is broadcast, none means 0, else one per cropped axis."""
    axis = param.axis if param.axis >= 0 else param.axis + rank
    count = rank - axis
    offsets = list(param.offset)
    if len(offsets) == 1:
        offsets *= count
    elif not offsets:
        offsets = [0] * count
    elif len(offsets) != count:
        raise ValueError(f"{len(offsets)} crop offsets for {count} axes")
    return axis, tuple(int(o) for o in offsets)


# ---------------------------------------------------------------- coordinates


def window_step(layer_type: str, w: Window, axis: int, scale, lo, hi) -> tuple:
    """A window layer's coordinate map along `axis` (pycaffe's coord_map in interval
    form): if position i of its input stands for input pixels [scale·i + lo, scale·i + hi],
    position j of its output stands for the returned (scale', lo', hi'). Exact for
    convolution and pooling; for deconvolution a superset (bounds are not rounded to whole
    positions). Receptive field: hi − lo + 1; stride: scale."""
    k, s, p, d = w.kernel[axis], w.stride[axis], w.pad[axis], w.dilation[axis]
    if layer_type == "Deconvolution":
        return scale / s, lo + scale * (p - d * (k - 1)) / s, hi + scale * p / s
    return scale * s, lo - scale * p, hi + scale * (d * (k - 1) - p)


# ---------------------------------------------------------------- output sizes


def conv_size(size: int, kernel: int, stride: int, pad: int, dilation: int = 1) -> int:
    """Convolution's output size: (size + 2·pad − extent) / stride + 1 in C's integer
    division (floor, except that a window larger than the padded input still gives 1)."""
    span = size + 2 * pad - (dilation * (kernel - 1) + 1)
    return (span // stride if span >= 0 else -(-span // stride)) + 1


def deconv_size(size: int, kernel: int, stride: int, pad: int, dilation: int = 1) -> int:
    """Deconvolution's output size, convolution's inverse: stride·(size − 1) + extent − 2·pad."""
    return stride * (size - 1) + dilation * (kernel - 1) + 1 - 2 * pad


def pooled_size(size: int, kernel: int, stride: int, pad: int, ceil: bool = True, *,
                padded: bool | None = None) -> int:
    """Caffe's PoolingLayer::Reshape along one axis: ceil (or floor) of the span over the
    stride, plus one; then, when the layer pads (on any axis: `padded`, by default
    pad > 0), the last window dropped if it would start in the padding past the image."""
    span = size + 2 * pad - kernel
    out = (-(-span // stride) if ceil else span // stride) + 1
    if (pad > 0 if padded is None else padded) and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def output_shape(layer, size: Pair) -> Pair:
    """A window layer's output (height, width) for an input of `size`, as Caffe shapes it."""
    w = window(layer)
    if layer.type == "Convolution":
        rule = conv_size
    elif layer.type == "Deconvolution":
        rule = deconv_size
    else:
        ceil, padded = ceil_mode(layer.pooling_param), any(w.pad)
        return tuple(pooled_size(n, k, s, p, ceil, padded=padded)
                     for n, k, s, p in zip(size, w.kernel, w.stride, w.pad))
    return tuple(rule(n, k, s, p, d) for n, k, s, p, d in
                 zip(size, w.kernel, w.stride, w.pad, w.dilation))


# ---------------------------------------------------------------- parameters


def parameter_shapes(layer, channels: int) -> list[tuple[int, ...]]:
    """The shapes of the parameter blobs a layer holds for a first bottom of `channels`
    channels, as Caffe shapes them (base_conv_layer.cpp, scale_layer.cpp): Convolution
    (out, in/group, kh, kw), Deconvolution (in, out/group, kh, kw), each with its bias
    (out,), and a single-bottom Scale over the channels. An InnerProduct's depend on the
    spatial size, unknown here: ValueError."""
    if layer.type in ("Convolution", "Deconvolution"):
        p = layer.convolution_param
        kh, kw = conv_window(p).kernel
        group = p.group or 1
        if layer.type == "Convolution":
            weights = (p.num_output, channels // group, kh, kw)
        else:
            weights = (channels, p.num_output // group, kh, kw)
        return [weights, (p.num_output,)] if p.bias_term else [weights]
    if layer.type == "Scale" and len(layer.bottom) == 1:
        return [(channels,)] * (1 + layer.scale_param.bias_term)
    if layer.type == "InnerProduct":
        raise ValueError(f"layer {layer.name!r}: an InnerProduct's parameters depend on its "
                         "input's spatial size")
    return []


def _values(shapes: list[tuple[int, ...]]) -> int:
    total = 0
    for shape in shapes:
        count = 1
        for dim in shape:
            count *= dim
        total += count
    return total


def layer_parameters(layer, channels: int) -> int:
    """Parameters (weights and biases) a layer holds for a first bottom of `channels`
    channels: parameter_shapes' values, counted."""
    return _values(parameter_shapes(layer, channels))


def _legacy_inputs(net_param) -> list[tuple[str, int]]:
    """(blob, channels) of a net's deprecated `input:` fields (input_shape or input_dim)."""
    if net_param.input_shape:
        return [(name, shape.dim[1]) for name, shape in zip(net_param.input,
                                                            net_param.input_shape)
                if len(shape.dim) > 1]
    dims = list(net_param.input_dim)
    return [(name, dims[4 * i + 1]) for i, name in enumerate(net_param.input)
            if len(dims) >= 4 * i + 2]


def net_parameter_shapes(net_param) -> dict[str, list[tuple[int, ...]] | None]:
    """Each layer's parameter blob shapes (layers without parameters left out; None for a
    layer whose shapes need the spatial size, an InnerProduct), read off the prototxt:
    channels are propagated from the Input layers' shapes, no net is built."""
    channels: dict[str, int] = dict(_legacy_inputs(net_param))
    shapes: dict[str, list[tuple[int, ...]] | None] = {}
    for layer in net_param.layer:
        if layer.type == "Input":
            for top, shape in zip(layer.top, layer.input_param.shape):
                channels[top] = shape.dim[1]
            continue
        inputs = [channels.get(b, 0) for b in layer.bottom]
        try:
            found = parameter_shapes(layer, inputs[0] if inputs else 0)
        except ValueError:
            found = None
        if found != []:
            # a bottom of unknown channels (a data layer's top): the shapes are not known
            shapes[layer.name] = found if inputs and inputs[0] else None
        if layer.type in ("Convolution", "Deconvolution"):
            channels[layer.top[0]] = layer.convolution_param.num_output
        elif layer.type == "Concat":
            channels[layer.top[0]] = sum(inputs)
        else:
            for top in layer.top:
                channels[top] = inputs[0] if inputs else 0
    return shapes


def parameter_counts(net_param) -> dict[str, int]:
    """Each layer's parameter count (layers without parameters left out), read off the
    prototxt (net_parameter_shapes); an InnerProduct's needs the spatial size: ValueError."""
    counts: dict[str, int] = {}
    for name, shapes in net_parameter_shapes(net_param).items():
        if shapes is None:  # an InnerProduct raises, naming the layer; else no channels
            layer = next(layer for layer in net_param.layer if layer.name == name)
            shapes = parameter_shapes(layer, 0)
        if _values(shapes):
            counts[name] = _values(shapes)
    return counts
