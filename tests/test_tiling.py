"""evaluation.tiling: exact tiles for huge pictures, and memory estimated from blob shapes.

Real nets (the experiments' deploy nets at reduced width, seeded weights), real Caffe: the
stitched score maps must equal the whole-picture forward, the shapes the tiling plans with
must be Caffe's own, and the memory estimate must match the peak a fresh process measures.
"""

import json
import subprocess
import sys

import caffe
import numpy as np
import pytest

from core.memory import COLUMN_LIMIT_VARIABLE, DEFAULT_COLUMN_LIMIT
from evaluation import tiling
from nets.experiments import build

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


def deploy(tmp_path, experiment, size, width):
    param = build(experiment, "deploy", width=width, size=size)
    path = tmp_path / f"{experiment}.prototxt"
    path.write_text(str(param))
    net = caffe.Net(str(path), caffe.TEST)
    rng = np.random.default_rng(0)
    for blobs in net.params.values():
        fan_in = int(np.prod(blobs[0].data.shape[1:]))
        blobs[0].data[...] = rng.standard_normal(blobs[0].data.shape, dtype=np.float32) * \
            np.float32(np.sqrt(2.0 / fan_in))
        for bias in blobs[1:]:
            bias.data[...] = rng.standard_normal(bias.data.shape, dtype=np.float32) * 0.01
    return net, param


# voc-fcn-googlenet: the only experiments whose poolings pad (3×3, stride 1: never clipped)
@pytest.mark.parametrize("experiment", ["voc-fcn8s", "voc-fcn32s", "voc-fcn-alexnet",
                                        "siftflow-fcn16s", "voc-fcn-googlenet"])
def test_shapes_are_caffes(tmp_path, experiment):
    for size in ((77, 130), (500, 353)):
        net, param = deploy(tmp_path, experiment, size, 1 / 16)
        shapes = tiling.blob_shapes(param, (1, 3, *size))
        assert {k: tuple(v.data.shape) for k, v in net.blobs.items()
                if "_split_" not in k} == \
            {k: v for k, v in shapes.items() if k in net.blobs}


def test_reach_of_fcn8s():
    rh, rw = tiling.reach(build("voc-fcn8s", "deploy", width=1 / 16), "score")
    assert rh == rw and rh.stride == 32
    # VGG16's fc7 sees 404 pixels; the skips and upsampling add a little around it
    assert 202 <= rh.before <= 260 and 202 <= rh.after <= 260


def test_a_fractional_reach_rounds_outwards_and_covers_caffes_dependencies(tmp_path):
    """Upsampling by 2 then pooling-like striding by 2: the intermediate stride is 1/2 and
    both bounds end fractional (before 1/2, after 3/2), rounded outwards to 1 and 2. Caffe's
    forward confirms an input pixel changes only output pixels within that reach."""
    from caffe import layers as L

    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 1, 9, 9]))
    n.up = L.Deconvolution(n.data, convolution_param=dict(num_output=1, kernel_size=3,
                                                          stride=2, pad=1, bias_term=False))
    n.score = L.Convolution(n.up, num_output=1, kernel_size=3, stride=2, bias_term=False)
    param = n.to_proto()
    rh, rw = tiling.reach(param, "score")
    assert rh == rw == tiling.Reach(stride=1, before=1, after=2)
    path = tmp_path / "fractional.prototxt"
    path.write_text(str(param))
    net = caffe.Net(str(path), caffe.TEST)
    for blobs in net.params.values():
        blobs[0].data[...] = 1
    for i in range(9):
        net.blobs["data"].data[...] = 0
        net.blobs["data"].data[0, 0, i, 4] = 1
        changed = np.argwhere(net.forward()["score"][0, 0] != 0)
        assert len(changed) and all(i - rh.after <= y <= i + rh.before for y, _ in changed)


def test_shapes_of_a_pooling_that_pads_are_caffes_where_it_clips_its_last_window(tmp_path):
    """Caffe drops a padded pooling's last window when it would start in the padding
    (every odd size here); the memory estimate's shapes must drop it too."""
    from caffe import layers as L
    from caffe import params as P

    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 2, 7, 7]))
    n.pool = L.Pooling(n.data, pool=P.Pooling.MAX, kernel_size=2, stride=2, pad=1)
    n.score = L.Convolution(n.pool, num_output=3, kernel_size=1)
    param = n.to_proto()
    path = tmp_path / "padded.prototxt"
    path.write_text(str(param))
    net = caffe.Net(str(path), caffe.TEST)
    clipped = 0
    for size in range(1, 12):
        net.blobs["data"].reshape(1, 2, size, size)
        net.reshape()
        shapes = tiling.blob_shapes(param, (1, 2, size, size))
        assert shapes == {k: tuple(v.data.shape) for k, v in net.blobs.items()}
        clipped += shapes["pool"][2] < -(-size // 2) + 1
    assert clipped == 6  # every odd size: the rule was exercised
    # at 7×7 the pooling is 4×4 (not 5×5): input, pooling, its argmax, the scores, the
    # 1×1 convolution's weights and bias, and its bias multiplier, in float32
    assert tiling.forward_bytes(param, (1, 2, 7, 7)) == \
        4 * (2 * 49 + 2 * 16 + 2 * 16 + 3 * 16 + (3 * 2 + 3) + 16)


def test_pointless_nets_are_refused():
    from caffe import layers as L

    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 3, 20, 20]))
    n.fc = L.InnerProduct(n.data, num_output=4)
    with pytest.raises(tiling.NotTileable, match="InnerProduct"):
        tiling.reach(n.to_proto(), "fc")


def test_joins_take_the_widest_reach_and_refuse_what_a_tile_cannot_bound():
    """A Concat or Eltwise reaches as far as its widest input; a join of blobs at different
    strides, a Concat along a spatial axis, or an output at a coarser stride than the
    input is refused; a WITHIN_CHANNEL LRN reaches half its window each way (an
    ACROSS_CHANNELS one adds nothing); height and width reach apart."""
    from caffe import layers as L
    from caffe import params as P

    def net(join: str, other: str = "wide", **kwargs):
        n = caffe.NetSpec()
        n.data = L.Input(shape=dict(dim=[1, 2, 16, 16]))
        n.narrow = L.Convolution(n.data, num_output=2, kernel_size=3, pad=1)
        n.wide = L.Convolution(n.data, num_output=2, kernel_h=5, kernel_w=7, pad_h=2,
                               pad_w=3)
        n.strided = L.Convolution(n.data, num_output=2, kernel_size=2, stride=2)
        n.joined = getattr(L, join)(n.narrow, getattr(n, other), **kwargs)
        n.within = L.LRN(n.joined, local_size=5, norm_region=P.LRN.WITHIN_CHANNEL)
        n.across = L.LRN(n.joined, local_size=5)
        n.within3 = L.LRN(n.joined, local_size=3, norm_region=P.LRN.WITHIN_CHANNEL)
        return n.to_proto()

    for join, kwargs in (("Concat", {}), ("Concat", {"axis": -3}), ("Eltwise", {})):
        param = net(join, **kwargs)
        assert tiling.reach(param, "joined") == (tiling.Reach(2, 2, 2), tiling.Reach(2, 3, 3))
        assert tiling.reach(param, "across") == (tiling.Reach(2, 2, 2), tiling.Reach(2, 3, 3))
        assert tiling.reach(param, "within") == (tiling.Reach(2, 4, 4), tiling.Reach(2, 5, 5))
        assert tiling.reach(param, "within3") == (tiling.Reach(2, 3, 3), tiling.Reach(2, 4, 4))
        with pytest.raises(tiling.NotTileable, match="joins blobs of different strides"):
            tiling.reach(net(join, "strided", **kwargs), "joined")
        with pytest.raises(tiling.NotTileable, match="has stride 2 in input pixels"):
            tiling.reach(param, "strided")
    with pytest.raises(tiling.NotTileable, match="concatenates along another axis"):
        tiling.reach(net("Concat", axis=2), "joined")
    assert tiling.blob_shapes(net("Concat", axis=2), (1, 2, 16, 16))["joined"] == (1, 2, 32, 16)


def test_a_crop_shifts_the_reach_by_its_offset_and_unknown_layers_are_refused():
    """A 5×5 convolution padded by 4 sees [j − 4, j]; cropped at offset 2 it sees
    [j − 2, j + 2] (along the cropped axes only). A layer not known to keep a bounded
    window (Reshape) is refused."""
    from caffe import layers as L

    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 1, 10, 10]))
    n.conv = L.Convolution(n.data, num_output=1, kernel_size=5, pad=4)
    n.cropped = L.Crop(n.conv, n.data, offset=2)
    n.width_only = L.Crop(n.conv, n.data, axis=3, offset=2)   # height kept as it is
    assert tiling.reach(n.to_proto(), "cropped") == (tiling.Reach(1, 2, 2),) * 2
    assert tiling.reach(n.to_proto(), "width_only") == (tiling.Reach(1, 4, 0),
                                                        tiling.Reach(1, 2, 2))
    n.apart = L.Crop(n.conv, n.data, offset=[1, 3])          # one offset per axis
    assert tiling.reach(n.to_proto(), "apart") == (tiling.Reach(1, 3, 1), tiling.Reach(1, 1, 3))
    n.small = L.Convolution(n.data, num_output=1, kernel_size=7)
    n.unpadded = L.Convolution(n.data, num_output=1, kernel_size=5)
    n.ahead = L.Crop(n.unpadded, n.small, offset=2)           # sees [j + 2, j + 6] only
    n.behind = L.Convolution(n.data, num_output=1, kernel_size=1, pad=1)   # [j − 1, j − 1]
    assert tiling.reach(n.to_proto(), "ahead") == (tiling.Reach(1, 0, 6),) * 2
    assert tiling.reach(n.to_proto(), "behind") == (tiling.Reach(1, 1, 0),) * 2
    n.flat = L.Reshape(n.cropped, reshape_param=dict(shape=dict(dim=[0, -1])))
    with pytest.raises(tiling.NotTileable, match="flat \\(Reshape\\) is not known"):
        tiling.reach(n.to_proto(), "cropped")
    n = caffe.NetSpec()   # an output finer than the input (upsampled, not cropped back)
    n.data = L.Input(shape=dict(dim=[1, 1, 10, 10]))
    n.up = L.Deconvolution(n.data, convolution_param=dict(num_output=1, kernel_size=2,
                                                          stride=2))
    with pytest.raises(tiling.NotTileable, match="has stride 1/2 in input pixels"):
        tiling.reach(n.to_proto(), "up")


def test_memory_counts_the_column_buffer_of_a_convolution_that_is_not_1x1():
    """A 3×3 unpadded convolution at stride 1 goes through im2col: its buffer (input
    channels × kernel × output positions) is counted; a 1×1 one's is not, nor an AVE
    pooling's argmax (MAX only); a Scale holds a weight and a bias per channel. A data
    layer without bottoms (DummyData here) stands for the input, as Input does."""
    from caffe import layers as L
    from caffe import params as P

    n = caffe.NetSpec()
    n.data = L.DummyData(shape=dict(dim=[1, 2, 6, 6]))
    n.conv = L.Convolution(n.data, num_output=3, kernel_size=3)
    n.scaled = L.Scale(n.conv, bias_term=True)
    n.pool = L.Pooling(n.scaled, pool=P.Pooling.AVE, kernel_size=2, stride=2)
    n.score = L.Convolution(n.pool, num_output=1, kernel_size=1)
    param = n.to_proto()
    assert tiling.reach(param, "conv") == (tiling.Reach(2, 0, 2),) * 2
    assert tiling.blob_shapes(param, (1, 2, 6, 6)) == {
        "data": (1, 2, 6, 6), "conv": (1, 3, 4, 4), "scaled": (1, 3, 4, 4),
        "pool": (1, 3, 2, 2), "score": (1, 1, 2, 2)}
    blobs = 2 * 36 + 3 * 16 + 3 * 16 + 3 * 4 + 4
    weights = (3 * 2 * 9 + 3) + 3 * 2 + (1 * 3 + 1)
    bias_multipliers = 16 + 4
    column = 2 * 9 * 16
    assert tiling.forward_bytes(param, (1, 2, 6, 6)) == \
        4 * (blobs + weights + bias_multipliers + column)
    # a deconvolution's buffer: output channels × kernel × input positions; a MAX pooling
    # whose argmax is a top of its own holds no hidden one
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 2, 4, 4]))
    n.pool, n.mask = L.Pooling(n.data, pool=P.Pooling.MAX, kernel_size=2, stride=1, ntop=2)
    n.up = L.Deconvolution(n.pool, convolution_param=dict(num_output=5, kernel_size=4,
                                                          stride=2, bias_term=False))
    blobs = 2 * 16 + 2 * 9 + 2 * 9 + 5 * 64
    assert tiling.forward_bytes(n.to_proto(), (1, 2, 4, 4)) == \
        4 * (blobs + 2 * 5 * 16 + 5 * 16 * 9)
    # a 1×1 convolution with a stride or a pad goes through im2col too
    for kwargs, out in (({"stride": 2}, 2), ({"pad": 1}, 6)):
        n = caffe.NetSpec()
        n.data = L.Input(shape=dict(dim=[1, 2, 4, 4]))
        n.conv = L.Convolution(n.data, num_output=3, kernel_size=1, **kwargs)
        column = 2 * out * out
        assert tiling.forward_bytes(n.to_proto(), (1, 2, 4, 4)) == \
            4 * (2 * 16 + 3 * out * out + (3 * 2 + 3) + out * out + column)


def test_memory_counts_a_chunk_of_a_convolution_over_the_column_limit(monkeypatch):
    """A convolution whose whole im2col matrix exceeds CAFFE_COLUMN_LIMIT values holds one
    chunk of it (caffe-recipe/patches/0007): columns in 320-wide blocks as many as fit
    the limit, plus the two blocks a last chunk may add, plus one more block when the
    output channels leave a 5-11 column tail (21 % 12 = 9); a deconvolution's col2im
    holds rows, in multiples of both its taps and 12."""
    from caffe import layers as L

    def net(num_output):
        n = caffe.NetSpec()
        n.data = L.Input(shape=dict(dim=[1, 64, 698, 698]))
        n.conv = L.Convolution(n.data, num_output=num_output, kernel_size=3, pad=1,
                               bias_term=False)
        return n.to_proto()

    def columns(param):  # the estimate less the blobs and the weights
        blobs = (64 + param.layer[1].convolution_param.num_output) * 698 * 698
        weights = param.layer[1].convolution_param.num_output * 64 * 9
        return tiling.forward_bytes(param, (1, 64, 698, 698)) // 4 - blobs - weights

    kernel_dim = 64 * 9  # 576 rows; the whole matrix: 576 × 487,204 = 280.6 M values
    fitting = DEFAULT_COLUMN_LIMIT // kernel_dim // 320 * 320  # 58,240 columns
    assert columns(net(64)) == kernel_dim * (fitting + 2 * 320)
    assert columns(net(21)) == kernel_dim * (fitting + 3 * 320)
    monkeypatch.setenv(COLUMN_LIMIT_VARIABLE, "0")  # chunking off: the whole matrix
    assert columns(net(64)) == kernel_dim * 698 * 698
    monkeypatch.setenv(COLUMN_LIMIT_VARIABLE, "4194304")  # 4 Mi values: 7,040 columns
    assert columns(net(64)) == kernel_dim * (7040 + 2 * 320)
    monkeypatch.delenv(COLUMN_LIMIT_VARIABLE)
    n = caffe.NetSpec()  # 21 channels × 256 taps × 160,000 positions: rows 768 at a time
    n.data = L.Input(shape=dict(dim=[1, 21, 400, 400]))
    n.up = L.Deconvolution(n.data, convolution_param=dict(num_output=21, kernel_size=16,
                                                          stride=8, bias_term=False))
    blobs = 21 * 400 * 400 + 21 * 3208 * 3208
    assert tiling.forward_bytes(n.to_proto(), (1, 21, 400, 400)) // 4 == \
        blobs + 21 * 21 * 256 + 768 * 400 * 400


def test_spans_partition_and_align():
    r = tiling.Reach(stride=32, before=230, after=240)
    for length in (1, 31, 32, 700, 1000, 1337):
        spans = tiling.spans(length, 128, r)
        kept = [i for s in spans for i in range(s.keep_start, s.keep_stop)]
        assert kept == list(range(length))
        for s in spans:
            assert 0 <= s.start and s.stop <= length
            assert s.start % 32 == 0 and s.start <= s.keep_start and s.stop >= s.keep_stop
            assert s.start == 0 or s.keep_start - s.start >= r.before
            assert s.stop == length or s.stop - s.keep_stop >= r.after


# sizes whose whole forward is well over the budget of 128-pixel cores: with column chunks
# (patch 0007) the upscore deconvolution's buffer (21 classes × 256 taps at any width) is
# a chunk of rows, nearly the same for a tile as for the picture
@pytest.mark.parametrize("experiment,size,width", [
    ("voc-fcn8s", (810, 770), 1 / 16),
    ("voc-fcn-alexnet", (850, 771), 1 / 16),
])
def test_stitched_tiles_equal_the_whole_picture(tmp_path, experiment, size, width):
    net, param = deploy(tmp_path, experiment, size, width)
    image = np.random.default_rng(1).standard_normal((3, *size), dtype=np.float32) * 60
    output = net.outputs[0]
    net.blobs["data"].data[...] = image
    whole = net.forward()[output][0].copy()
    rh, rw = tiling.reach(param, output)
    side = 128 + rh.before + rh.after + rh.stride  # budget for 128-pixel cores
    budget = int(tiling.forward_bytes(param, (1, 3, side, side)) / tiling.HEADROOM)
    stitched, plan = tiling.forward_tiles(net, param, "data", image, (output,), budget)
    assert len(plan.rows) >= 2 and len(plan.cols) >= 2
    assert plan.tile_bytes <= budget * tiling.HEADROOM
    assert budget < tiling.forward_bytes(param, (1, 3, *size))
    got = stitched[output]
    assert got.shape == whole.shape
    # Same grid and same reach: equal up to float32 rounding. Not bit for bit, because
    # OpenBLAS's sgemm sums an output column in an order that depends on where the column
    # falls in its blocking of the matrix (evaluation/README.md); anything beyond rounding
    # (a reach too short, a misaligned grid) would show as differences of order 1.
    relative = np.abs(got - whole).max() / np.abs(whole).max()
    assert relative < 2e-6, relative
    if experiment == "voc-fcn8s":
        labels = tiling.label_maps(net, param, "data", image, (output,), budget)[output]
        top2 = np.sort(whole, axis=0)[-2:]
        clear = (top2[1] - top2[0]) > 1e-4 * np.abs(whole).max()  # not a near tie
        assert clear.mean() > 0.99
        assert np.array_equal(labels[clear], whole.argmax(0)[clear])


def test_a_short_reach_would_show(tmp_path):
    """The equality above is not loose: tiles that reach less than the net's field
    differ by far more than rounding."""
    size = (700, 700)
    net, param = deploy(tmp_path, "voc-fcn-alexnet", size, 1 / 16)
    image = np.random.default_rng(1).standard_normal((3, *size), dtype=np.float32) * 60
    net.blobs["data"].data[...] = image
    whole = net.forward()["score"][0].copy()
    r = tiling.reach(param, "score")[0]
    short = tiling.Reach(r.stride, r.before // 3, r.after // 3)
    got = np.empty_like(whole)
    for row in tiling.spans(size[0], 256, short):
        for col in tiling.spans(size[1], 256, short):
            net.blobs["data"].reshape(1, 3, row.stop - row.start, col.stop - col.start)
            net.blobs["data"].data[...] = image[:, row.start:row.stop, col.start:col.stop]
            out = net.forward()["score"][0]
            got[:, row.keep_start:row.keep_stop, col.keep_start:col.keep_stop] = \
                out[:, row.keep_start - row.start:row.keep_stop - row.start,
                    col.keep_start - col.start:col.keep_stop - col.start]
    assert np.abs(got - whole).max() / np.abs(whole).max() > 1e-3


def test_whole_picture_when_it_fits():
    param = build("voc-fcn8s", "deploy", width=1 / 16)
    plan = tiling.plan(param, "score", (300, 200), budget=2**40)
    assert plan.tiles == 1 and plan.rows[0] == tiling.Span(0, 300, 0, 300)


def test_budget_too_small_says_what_to_do():
    param = build("voc-fcn8s", "deploy", width=1 / 16)
    with pytest.raises(tiling.BudgetTooSmall, match="raise the budget"):
        tiling.plan(param, "score", (3000, 3000), budget=2**20)


def test_budget_parsing():
    assert tiling.parse_budget("6G") == 6 * 2**30
    assert tiling.parse_budget("512MiB") == 512 * 2**20
    assert tiling.parse_budget("1000") == 1000
    for bad in ("lots", "-1G", "0"):
        with pytest.raises(ValueError, match="memory budget"):
            tiling.parse_budget(bad)
    assert tiling.default_budget() > 2**27


MEASURE = """
import json, sys, numpy as np
sys.path[:0] = [{repo!r}]
import caffe
from core.memory import peak_rss_bytes, status_bytes
from nets.experiments import build
from evaluation import tiling

size, width, budget = tuple({size}), {width}, {budget}
param = build('voc-fcn8s', 'deploy', width=width, size=(64, 64))
open(sys.argv[1], 'w').write(str(param))
image = np.random.default_rng(0).standard_normal((3, *size), dtype=np.float32)
before = status_bytes('VmRSS')
net = caffe.Net(sys.argv[1], caffe.TEST)
if budget:
    _, plan = tiling.forward_tiles(net, param, 'data', image, ('score',), budget,
                                   reduce=lambda s: s.argmax(0).astype(np.uint8))
    estimate, tiles = plan.tile_bytes, plan.tiles
else:
    net.blobs['data'].reshape(1, *image.shape)
    net.blobs['data'].data[...] = image
    net.forward()
    estimate, tiles = tiling.forward_bytes(param, (1, 3, *size)), 1
print(json.dumps(dict(peak=peak_rss_bytes() - before, estimate=estimate, tiles=tiles)))
"""


def measure(tmp_path, size, width, budget=0, **env):
    code = MEASURE.format(repo=str(REPO), size=list(size), width=width, budget=budget)
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "net.prototxt")],
                          capture_output=True, text=True, timeout=300, check=True,
                          env={**__import__("os").environ, "GLOG_minloglevel": "2", **env})
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("limit", [None, "0", "4194304"])
def test_memory_estimate_within_ten_percent_of_the_measured_peak(tmp_path, limit):
    """Caffe's column chunks at their default limit (conv1_2's 1.1 GB matrix asks for a
    136 MB chunk), turned off (whole matrices: ~280 MB more), and at a small limit."""
    env = {} if limit is None else {COLUMN_LIMIT_VARIABLE: limit}
    got = measure(tmp_path, (700, 600), 1 / 4, **env)
    assert got["estimate"] > 2**28  # large enough that the process's own noise is small
    assert abs(got["peak"] - got["estimate"]) <= 0.10 * got["peak"], got


def test_tiled_huge_picture_stays_under_budget(tmp_path):
    budget = 600 * 2**20  # the whole 1200×1000 forward would take ~985 MiB at this width
    got = measure(tmp_path, (1200, 1000), 1 / 8, budget)
    assert got["tiles"] > 1
    # the stitched labels (uint8) and one tile's kept scores come on top of the net's share
    assert got["peak"] <= budget + 1200 * 1000 * 2, got


def test_infer_tiles_a_picture_over_its_memory_budget(tmp_path, capsys):
    """`make infer MEMORY=…`: a picture whose forward exceeds the budget is labelled in
    tiles, with the class map of the whole-picture run wherever scores are not near-tied."""
    from PIL import Image

    from evaluation.infer import load_segmenter, main
    from testkit.labels import read_label

    param = build("voc-fcn8s", "deploy", width=1 / 16)
    deploy = tmp_path / "deploy.prototxt"
    deploy.write_text(str(param))
    net = caffe.Net(str(deploy), caffe.TEST)
    rng = np.random.default_rng(3)
    for blobs in net.params.values():
        fan_in = int(np.prod(blobs[0].data.shape[1:]))
        blobs[0].data[...] = rng.standard_normal(blobs[0].data.shape, dtype=np.float32) * \
            np.float32(np.sqrt(2.0 / fan_in))
    weights = tmp_path / "w.caffemodel"
    net.save(str(weights))
    picture = rng.integers(0, 255, (820, 780, 3)).astype(np.uint8)
    Image.fromarray(picture).save(tmp_path / "big.png")
    budget = tiling.forward_bytes(param, (1, 3, 820, 780)) * 3 // 4  # the whole does not fit
    assert tiling.plan(param, "score", (820, 780), budget).tiles > 1
    whole = load_segmenter(str(deploy), weights)(picture)["score"]
    assert main([str(tmp_path / "big.png"), "--net", str(deploy), "--weights", str(weights),
                 "--out", str(tmp_path / "out"), "--memory", str(budget)]) == 0
    tiled = read_label(tmp_path / "out" / "big.png")
    assert tiled.shape == whole.shape and (tiled == whole).mean() > 0.999
    assert main([str(tmp_path / "big.png"), "--net", str(deploy), "--weights", str(weights),
                 "--out", str(tmp_path / "out"), "--memory", "1M", "--force"]) == 1
    assert "raise the budget" in capsys.readouterr().err
