"""Pictures too large for memory, segmented exactly in overlapping tiles.

A fully convolutional net's output pixel depends on a bounded window of input pixels (its
reach, read off the net's layers here: kernels, strides, paddings, upsampling and crop
offsets). If a tile starts at a multiple of the net's coarsest stride (32 for the VGG16
FCNs), every layer's grid inside the tile coincides with the whole image's grid, and an
output pixel whose whole reach lies inside the tile, or crosses only picture borders that
are also the tile's borders, is computed from the same values by the same arithmetic as in
the whole-image forward. Tiles keep only those pixels ("cores"), which partition the picture,
and overlap by the reach. Whether the arithmetic is also the same *bits* depends on the
BLAS summing each output of a GEMM in an order that does not depend on the matrix's other
dimensions; the tests check it on real nets (evaluation/README.md states what was measured).

Memory is estimated from blob shapes (propagated here without building a net): every blob
of the deploy net, its parameters, each MAX pooling's argmax, each convolution's bias
multiplier and the one column buffer the recipe's Caffe shares between convolutions (no
larger than a chunk for a layer whose whole im2col matrix is over CAFFE_COLUMN_LIMIT values:
caffe-recipe/patches/0007, core.memory.column_values).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from core.geometry import (
    WINDOW_TYPES,
    Window,
    conv_window,
    crop_offsets,
    layer_parameters,
    output_shape,
    window,
    window_step,
)
from core.memory import column_values
from evaluation.runtime import memory_limit

FLOAT = 4  # bytes per float32 (and per int32 argmax index)
# share of a budget the estimate may fill: what it leaves out (the BLAS's work buffers, the
# tile's copy into the input blob, allocator slack) measured at up to ~5 % of the peak
HEADROOM = 0.9
# the same value at every spatial position; these layers do not move anything in space
POINTWISE = {"ReLU", "Dropout", "Scale", "Sigmoid", "TanH", "Power", "Softmax", "BatchNorm",
             "Bias", "AbsVal", "BNLL", "ELU", "PReLU", "Split", "Exp", "Log", "Threshold"}


class NotTileable(ValueError):
    """The net has a layer whose output does not depend on a bounded input window."""


class BudgetTooSmall(ValueError):
    """Not even the smallest tile fits in the memory budget."""


# ---------------------------------------------------------------- layer geometry


def layer_window(layer) -> Window:
    """A Convolution's, Deconvolution's or Pooling's window (core.geometry); a global
    pooling has none that a tile could bound."""
    if layer.type == "Pooling" and layer.pooling_param.global_pooling:
        raise NotTileable(f"layer {layer.name}: global pooling sees the whole picture")
    return window(layer)


# ---------------------------------------------------------------- reach


@dataclass(frozen=True)
class Reach:
    """Along one axis: output pixel y depends on input pixels within [y - before,
    y + after] only, and tiles must start at multiples of `stride`."""
    stride: int
    before: int
    after: int


def reach(net_param, output: str) -> tuple[Reach, Reach]:
    """The (height, width) reach of blob `output` of a deploy NetParameter. Each blob
    position i of a blob stands for input pixels [a·i + lo, a·i + hi] (a is its stride in
    input pixels, a fraction after upsampling); exact for convolution and pooling, a
    superset after deconvolution (its bounds are not rounded to whole positions)."""
    maps: dict[str, list[tuple[Fraction, Fraction, Fraction]]] = {}
    numerators = {1}
    for layer in net_param.layer:
        if layer.type == "Input" or not layer.bottom:
            for top in layer.top:
                maps[top] = [(Fraction(1), Fraction(0), Fraction(0))] * 2
            continue
        bottoms = [maps[b] for b in layer.bottom if b in maps]
        if not bottoms:
            continue
        first = bottoms[0]
        if layer.type in WINDOW_TYPES:
            w = layer_window(layer)
            new = [window_step(layer.type, w, axis, a, lo, hi)
                   for axis, (a, lo, hi) in enumerate(first)]
        elif layer.type == "Crop":
            axis0, offsets = crop_offsets(layer.crop_param)
            new = []
            for axis, (a, lo, hi) in enumerate(first):
                o = offsets[axis + 2 - axis0] if axis + 2 >= axis0 else 0
                new.append((a, lo + a * o, hi + a * o))
        elif layer.type in ("Eltwise", "Concat") or layer.type in POINTWISE or \
                (layer.type == "LRN" and layer.lrn_param.norm_region == 0):
            if layer.type == "Concat" and layer.concat_param.axis not in (1, -3):
                raise NotTileable(f"layer {layer.name}: concatenates along another axis "
                                  f"than channels")
            new = []
            for axis in range(2):
                strides = {b[axis][0] for b in bottoms}
                if len(strides) > 1:
                    raise NotTileable(f"layer {layer.name}: joins blobs of different strides")
                new.append((first[axis][0], min(b[axis][1] for b in bottoms),
                            max(b[axis][2] for b in bottoms)))
        elif layer.type == "LRN":  # WITHIN_CHANNEL: a local_size square around each pixel
            half = (layer.lrn_param.local_size - 1) // 2
            new = [(a, lo - a * half, hi + a * half) for a, lo, hi in first]
        else:
            raise NotTileable(f"layer {layer.name} ({layer.type}) is not known to keep a "
                              f"bounded input window; tiling supports convolutional nets")
        for top in layer.top:
            maps[top] = new
        numerators.update(a.numerator for a, _, _ in new)
    if output not in maps:
        raise KeyError(f"blob {output!r} is not computed from the net's input")
    stride = math.lcm(*numerators)
    reaches = []
    for a, lo, hi in maps[output]:
        if a != 1:
            raise NotTileable(f"{output} has stride {a} in input pixels; tiling needs an "
                              f"output at the input's resolution (the FCNs crop back to it)")
        reaches.append(Reach(stride, max(0, math.ceil(-lo)), max(0, math.ceil(hi))))
    return reaches[0], reaches[1]


# ---------------------------------------------------------------- shapes and memory


def blob_shapes(net_param, input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """Every blob's shape for an input of `input_shape` (N, C, H, W), as Caffe computes
    it (ceil-mode pooling clipped as Caffe does), without building the net."""
    shapes: dict[str, tuple[int, ...]] = {}
    for layer in net_param.layer:
        if layer.type == "Input" or not layer.bottom:
            for top in layer.top:
                shapes[top] = tuple(input_shape)
            continue
        if not all(b in shapes for b in layer.bottom):
            raise NotTileable(f"layer {layer.name}: input blob(s) of unknown shape")
        bottom = shapes[layer.bottom[0]]
        if layer.type in ("Convolution", "Deconvolution"):
            layer_window(layer)
            size = output_shape(layer, bottom[2:])
            top_shapes = [(bottom[0], layer.convolution_param.num_output, *size)]
        elif layer.type == "Pooling":
            layer_window(layer)  # ceil-mode sizes, clipped as Caffe clips a padded pooling
            size = output_shape(layer, bottom[2:])
            top_shapes = [(bottom[0], bottom[1], *size)] * len(layer.top)
        elif layer.type == "Crop":
            axis0, _ = crop_offsets(layer.crop_param)
            reference = shapes[layer.bottom[1]]
            top_shapes = [tuple(bottom[:axis0]) + tuple(reference[axis0:])]
        elif layer.type == "Concat":
            axis = layer.concat_param.axis if layer.concat_param.HasField("axis") else 1
            total = sum(shapes[b][axis] for b in layer.bottom)
            top_shapes = [bottom[:axis] + (total,) + bottom[axis + 1:]]
        elif layer.type in ("Eltwise", "LRN") or layer.type in POINTWISE:
            top_shapes = [bottom] * len(layer.top)
        else:
            raise NotTileable(f"layer {layer.name} ({layer.type}): shape not known here")
        for top, shape in zip(layer.top, top_shapes):
            shapes[top] = shape
    return shapes


def _count(shape) -> int:
    return int(np.prod(shape, dtype=np.int64))


def forward_bytes(net_param, input_shape: tuple[int, ...]) -> int:
    """Bytes Caffe (the recipe's build) holds for one CPU forward of a deploy net at
    `input_shape`: blobs (in-place tops once), parameters, MAX pooling argmax indices,
    convolution bias multipliers, and the shared column buffer at its largest request
    (core.memory.column_values: a chunk's worth for a layer over CAFFE_COLUMN_LIMIT)."""
    shapes = blob_shapes(net_param, input_shape)
    total = sum(_count(s) for s in shapes.values()) * FLOAT
    column = 0
    for layer in net_param.layer:
        if layer.type in ("Convolution", "Deconvolution"):
            p = layer.convolution_param
            w = conv_window(p)
            bottom, top = shapes[layer.bottom[0]], shapes[layer.top[0]]
            one_by_one = w.kernel == (1, 1) and w.stride == (1, 1) and w.pad == (0, 0)
            column = max(column, column_values(layer.type, bottom, top, w.kernel,
                                               group=p.group, one_by_one=one_by_one,
                                               force_nd_im2col=p.force_nd_im2col))
            total += layer_parameters(layer, bottom[1]) * FLOAT  # weights and bias
            if p.bias_term:
                total += _count(top[2:]) * FLOAT  # the bias multiplier
        elif layer.type == "Pooling" and layer.pooling_param.pool == 0 and \
                len(layer.top) == 1:
            total += _count(shapes[layer.top[0]]) * FLOAT
        elif layer.type == "Scale":
            total += layer_parameters(layer, shapes[layer.bottom[0]][1]) * FLOAT
    return total + column * FLOAT


# ---------------------------------------------------------------- planning


@dataclass(frozen=True)
class Span:
    """One tile along one axis: it reads input [start, stop) and keeps its outputs
    [keep_start, keep_stop) (picture coordinates)."""
    start: int
    stop: int
    keep_start: int
    keep_stop: int


def spans(length: int, core: int, r: Reach) -> list[Span]:
    """Tiles along an axis of `length` pixels with cores of `core` pixels (a multiple of
    the stride); each tile starts on the stride's grid and reaches `before`/`after`
    beyond its core unless the picture ends first."""
    if core % r.stride:
        raise ValueError(f"core {core} is not a multiple of the net's stride {r.stride}")
    out = []
    for keep in range(0, length, core):
        keep_stop = min(length, keep + core)
        start = 0 if keep - r.before <= 0 else (keep - r.before) // r.stride * r.stride
        stop = length if keep_stop + r.after >= length else keep_stop + r.after
        out.append(Span(start, stop, keep, keep_stop))
    return out


@dataclass(frozen=True)
class Plan:
    rows: tuple[Span, ...]
    cols: tuple[Span, ...]
    tile_bytes: int | None  # estimated forward bytes of the largest tile (None: unknown)

    @property
    def tiles(self) -> int:
        return len(self.rows) * len(self.cols)

    def largest_tile(self) -> tuple[int, int]:
        return (max(s.stop - s.start for s in self.rows),
                max(s.stop - s.start for s in self.cols))


def plan(net_param, output: str, size: tuple[int, int], budget: int,
         channels: int = 3) -> Plan:
    """The fewest tiles whose forward fits in `budget` bytes (Caffe's share, see
    forward_bytes; the estimate may fill HEADROOM of it): the whole picture as one tile
    when it fits (or when the net has layers whose shapes are not known here: then as
    before tiling existed), else the largest
    square core, a multiple of the stride, whose tiles fit. Raises BudgetTooSmall when not
    even a core of one stride fits, NotTileable when the net cannot be tiled."""
    height, width = size
    budget = int(budget * HEADROOM)
    whole_spans = ((Span(0, height, 0, height),), (Span(0, width, 0, width),))
    try:
        whole_bytes = forward_bytes(net_param, (1, channels, height, width))
    except NotTileable:
        return Plan(*whole_spans, None)
    if whole_bytes <= budget:
        return Plan(*whole_spans, whole_bytes)
    rh, rw = reach(net_param, output)

    def balanced(length: int, core: int) -> int:
        """The same number of tiles with cores as even as the stride allows (no sliver
        of a last core that costs a whole tile's reach)."""
        return _round_up(-(-length // -(-length // core)), stride)

    def make(core_h: int, core_w: int) -> Plan:
        rows = spans(height, balanced(height, core_h), rh)
        cols = spans(width, balanced(width, core_w), rw)
        tile = (max(s.stop - s.start for s in rows), max(s.stop - s.start for s in cols))
        return Plan(tuple(rows), tuple(cols), forward_bytes(net_param, (1, channels, *tile)))

    stride = math.lcm(rh.stride, rw.stride)
    low, high = 1, max(_round_up(height, stride), _round_up(width, stride)) // stride
    best = None
    while low <= high:  # the largest core (in strides) that fits
        mid = (low + high) // 2
        candidate = make(min(mid * stride, _round_up(height, stride)),
                         min(mid * stride, _round_up(width, stride)))
        if candidate.tile_bytes <= budget:
            best, low = candidate, mid + 1
        else:
            high = mid - 1
    if best is None:
        need = make(stride, stride).tile_bytes
        raise BudgetTooSmall(f"even the smallest tile ({stride}-pixel core plus the net's "
                          f"reach) needs {need / 2**30:.2f} GiB, over the "
                          f"{budget / 2**30:.2f} GiB budget; raise the budget (--memory)")
    return best


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m


def default_budget() -> int:
    """Half the memory this process may take now (evaluation.runtime.memory_limit: what is
    available, or less under `ulimit -v`), for Caffe's share of a forward."""
    return memory_limit()[0] // 2


def parse_budget(text: str) -> int:
    """'6G', '512M', '2.5GiB', or bytes → bytes."""
    units = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    value = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = value[-1] if value and value[-1] in units else ""
    try:
        number = float(value[:-1] if unit else value)
    except ValueError:
        raise ValueError(f"memory budget {text!r}: expected a size such as 6G or 512M") \
            from None
    if number <= 0:
        raise ValueError(f"memory budget {text!r} must be positive")
    return int(number * units[unit])


# ---------------------------------------------------------------- running


def forward_tiles(net, net_param, input_blob: str, data: np.ndarray, outputs: tuple[str, ...],
                  budget: int, reduce=None) -> tuple[dict[str, np.ndarray], Plan]:
    """Run a caffe.Net (deploy, batch 1) over `data` (C×H×W) in the tiles of plan(), and
    stitch each output's kept pixels: the scores (C'×H×W) or, with `reduce` (e.g.
    lambda s: s.argmax(0).astype(np.uint8)), what it makes of each tile's kept scores,
    so a huge picture never holds its whole score map."""
    height, width = data.shape[1:]
    the_plan = plan(net_param, outputs[0], (height, width), budget, data.shape[0])
    if the_plan.tiles > 1:
        for name in outputs[1:]:  # every head must be tileable with the same reach
            if reach(net_param, name) != reach(net_param, outputs[0]):
                raise NotTileable(f"heads {outputs[0]} and {name} reach differently")
    stitched: dict[str, np.ndarray] = {}
    blob = net.blobs[input_blob]
    for row in the_plan.rows:
        for col in the_plan.cols:
            tile = data[:, row.start:row.stop, col.start:col.stop]
            blob.reshape(1, *tile.shape)
            blob.data[...] = tile
            net.forward()
            for name in outputs:
                scores = net.blobs[name].data[0]
                if scores.shape[1:] != tile.shape[1:]:
                    raise RuntimeError(f"{name} is {scores.shape[1]}×{scores.shape[2]} for a "
                                       f"{tile.shape[1]}×{tile.shape[2]} input: the net's "
                                       f"crop layers do not restore the input size")
                kept = scores[:, row.keep_start - row.start:row.keep_stop - row.start,
                              col.keep_start - col.start:col.keep_stop - col.start]
                kept = kept.copy() if reduce is None else reduce(kept)
                if name not in stitched:
                    stitched[name] = np.empty(kept.shape[:-2] + (height, width), kept.dtype)
                stitched[name][..., row.keep_start:row.keep_stop,
                               col.keep_start:col.keep_stop] = kept
    return stitched, the_plan


def label_maps(net, net_param, input_blob: str, data: np.ndarray, outputs: tuple[str, ...],
               budget: int) -> dict[str, np.ndarray]:
    """Class maps (H×W uint8) by output blob for one preprocessed picture (C×H×W): the
    whole picture in one forward when it fits in `budget` bytes, else exact tiles."""
    labels, _ = forward_tiles(net, net_param, input_blob, data, outputs, budget,
                              reduce=lambda scores: scores.argmax(0).astype(np.uint8))
    return labels
