"""core.memory: the column buffer the recipe's Caffe asks for, and a process's own peak.

- The estimate evaluation.runtime makes from a real caffe.Net (inference, training) counts
  for a convolution over CAFFE_COLUMN_LIMIT the chunk caffe-recipe/patches/0007 allocates,
  not the whole im2col matrix (the measured side: tests/test_tiling.py's peaks).
- peak_rss_bytes in a child is the child's own peak, where ru_maxrss is the parent's size.
- evaluation.runtime on hand-counted nets: what the estimate counts, the refusals at their
  exact edges, and the limit this process may take (make mutate's runtime target).
"""

import json
import subprocess
import sys

import caffe
import numpy as np
import pytest
from caffe import layers as L

from core.memory import COLUMN_LIMIT_VARIABLE, DEFAULT_COLUMN_LIMIT, column_limit
from evaluation import runtime

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


def shape_only_net(tmp_path, n) -> caffe.Net:
    path = tmp_path / "net.prototxt"
    path.write_text(str(n.to_proto()))
    return caffe.Net(str(path), caffe.TEST)  # blobs are allocated on first use: none here


def test_the_runtime_estimate_counts_the_chunk_caffe_allocates(tmp_path, monkeypatch):
    """3×3 convolution of 64 channels at 698×698 (576 × 487,204 values whole, 1.1 GB): a
    forward holds 58,240 + 640 columns of it (320-wide blocks within the limit, and the
    two blocks a last chunk may add), training as well (its bottom gradient's rows come 36
    at a time: 17.5 M values, fewer); a 1×1 convolution holds none."""
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 64, 698, 698]))
    n.conv = L.Convolution(n.data, num_output=64, kernel_size=3, pad=1, bias_term=False)
    n.score = L.Convolution(n.conv, num_output=4096, kernel_size=1, bias_term=False)
    net = shape_only_net(tmp_path, n)
    values = (2 * 64 + 4096) * 698 * 698
    params = 64 * 64 * 9 + 4096 * 64
    chunk = 576 * (DEFAULT_COLUMN_LIMIT // 576 // 320 * 320 + 2 * 320)
    assert runtime.forward_bytes(net) == 4 * (values + params + chunk)
    assert runtime.forward_bytes(net, training=True) == 4 * (2 * (values + params) + chunk)
    monkeypatch.setenv(COLUMN_LIMIT_VARIABLE, "0")
    assert runtime.forward_bytes(net) == 4 * (values + params + 576 * 698 * 698)


def test_a_deconvolutions_chunks_are_rows_and_training_holds_the_larger(tmp_path):
    """21 channels upsampled 8× by 16×16 kernels from 400×400: col2im (the forward) fills
    768 rows (a multiple of 256 taps and of 12) × 160,000 positions at a time; training
    also fills im2col chunks of 5,376 rows × (6,080 + 640 + 320) columns (21 % 12 = 9
    leaves a tail: one block more), fewer values, so the rows' chunk is the buffer."""
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 21, 400, 400]))
    n.up = L.Deconvolution(n.data, convolution_param=dict(num_output=21, kernel_size=16,
                                                          stride=8, bias_term=False))
    net = shape_only_net(tmp_path, n)
    values, params = 21 * 400 * 400 + 21 * 3208 * 3208, 21 * 21 * 256
    rows = 768 * 400 * 400
    assert 5376 * (6080 + 640 + 320) < rows
    assert runtime.forward_bytes(net) == 4 * (values + params + rows)
    assert runtime.forward_bytes(net, training=True) == 4 * (2 * (values + params) + rows)


@pytest.mark.parametrize("text, limit", [("", DEFAULT_COLUMN_LIMIT), ("0", 0),
                                         ("4194304", 4194304), (" 12abc", 12), ("off", 0)])
def test_the_column_limit_is_read_as_caffe_reads_it(monkeypatch, text, limit):
    """strtoull: leading digits; none (a word) is 0, chunking off; empty is the default."""
    monkeypatch.setenv(COLUMN_LIMIT_VARIABLE, text)
    assert column_limit() == limit


CHILD = """
import json, resource, sys
sys.path[:0] = [{repo!r}]
from core.memory import peak_rss_bytes
print(json.dumps(dict(own=peak_rss_bytes() / 2**20,
                      maxrss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
"""


def test_a_childs_peak_is_its_own_where_ru_maxrss_is_the_parents():
    """Linux's execve carries the pre-exec process's high-water RSS (a fork of this one)
    into the new process's ru_maxrss; VmHWM starts with the new address space."""
    held = np.ones(512 * 2**20 // 8)  # 512 MiB, touched: resident in this process
    done = subprocess.run([sys.executable, "-c", CHILD.format(repo=str(REPO))],
                          capture_output=True, text=True, check=True, timeout=60)
    got = json.loads(done.stdout)
    assert held.sum() == held.size
    assert got["maxrss"] > 512, got  # the kernel's carry-over that this setup exposes
    assert 1 < got["own"] < 128, got


# --- column_values on hand-computed cases (the patch's rule written out) ------------------------
def conv(channels_in: int, channels_out: int, h: int, w: int) -> tuple[tuple, tuple]:
    """(bottom, top) of a same-size convolution."""
    return (1, channels_in, h, w), (1, channels_out, h, w)


def test_below_the_limit_a_convolution_asks_for_its_whole_matrix_of_any_kernel_shape():
    """Rows = input channels × taps (3 × 1 here: both kernel sides count), columns = the
    output positions; at exactly the limit it is still whole (the patch chunks only above)."""
    from core.memory import column_values

    bottom, top = (1, 8, 50, 40), (1, 16, 48, 40)
    whole = (8 * 3 * 1) * (48 * 40)
    assert column_values("Convolution", bottom, top, (3, 1)) == whole == 46_080
    assert column_values("Convolution", bottom, top, (3, 1), limit=whole) == whole
    assert column_values("Convolution", bottom, top, (3, 1), one_by_one=True) == 0


def test_above_the_limit_the_chunk_is_whole_gemm_blocks_of_columns_plus_two_blocks():
    """64 → 64 channels, 3 × 3, 100 × 100: rows 576, 10,000 columns. A limit of 100,000
    values is under one block of 320 columns (576 × 320 = 184,320), so the chunk is one
    block, plus the two blocks the patch adds; 64 output channels leave a remainder of 4
    columns of 12 (not more than the narrow 4): no overlap block."""
    from core.memory import GEMM_BLOCK, column_values

    bottom, top = conv(64, 64, 100, 100)
    assert GEMM_BLOCK == 320
    one_block = 576 * (320 + 2 * 320)
    assert column_values("Convolution", bottom, top, (3, 3), limit=100_000) == one_block
    # fewer positions than one block (10 × 10 = 100 columns) still take the whole block
    small_bottom, small_top = conv(64, 64, 10, 10)
    assert column_values("Convolution", small_bottom, small_top, (3, 3),
                         limit=1_000) == one_block
    # a limit of ten blocks' worth (576 × 3,200 = 1,843,200 ≤ 2,000,000 < 576 × 3,520)
    assert column_values("Convolution", bottom, top, (3, 3),
                         limit=2_000_000) == 576 * (3_200 + 2 * 320)


@pytest.mark.parametrize("channels_out, overlap", [(24, 0), (16, 0), (17, 320), (23, 320)])
def test_an_output_channel_remainder_over_four_columns_adds_an_overlap_block(channels_out,
                                                                            overlap):
    """The remainder of the output channels in pieces of 12: 0 and 4 need none, 5 and 11 one
    more block of 320 columns."""
    from core.memory import column_values

    bottom, top = conv(64, channels_out, 100, 100)
    assert column_values("Convolution", bottom, top, (3, 3),
                         limit=100_000) == 576 * (320 + 640 + overlap)


def test_training_holds_the_larger_of_the_column_chunk_and_the_row_chunk():
    """300 × 300: 90,000 columns; a row chunk is whole units of lcm(9 taps, 12) = 36 rows,
    at least one: 36 × 90,000 = 3,240,000 values, more than the 576 × 960 column chunk;
    inference holds the column chunk only."""
    from core.memory import column_values

    bottom, top = conv(64, 64, 300, 300)
    assert column_values("Convolution", bottom, top, (3, 3), limit=100_000) == 576 * 960
    assert column_values("Convolution", bottom, top, (3, 3), limit=100_000,
                         training=True) == 36 * 90_000


def test_a_deconvolution_chunks_its_col2im_rows_in_units_of_taps_and_twelve():
    """A 4 × 4 deconvolution from 100 × 100 to 202 × 202, 64 channels: its matrix is
    64 × 16 = 1,024 rows by the 10,000 input positions; at 2,000,000 values a row chunk is
    2,000,000 // 10,000 // lcm(16, 12) = 4 units of 48 rows."""
    from core.memory import column_values

    bottom, top = (1, 64, 100, 100), (1, 64, 202, 202)
    assert column_values("Deconvolution", bottom, top, (4, 4), limit=20_000_000) == 1_024 * 10_000
    assert column_values("Deconvolution", bottom, top, (4, 4), limit=2_000_000) == 192 * 10_000


@pytest.mark.parametrize("changes", [{"group": 2}, {"force_nd_im2col": True}])
def test_grouped_and_nd_convolutions_are_never_chunked(changes):
    """The patch chunks only the 2-D, ungrouped im2col path: a grouped or N-d convolution
    asks for its whole matrix whatever the limit (group 2: 2 × 288 rows)."""
    from core.memory import column_values

    bottom, top = conv(64, 64, 100, 100)
    assert column_values("Convolution", bottom, top, (3, 3), limit=100_000,
                         **changes) == 576 * 10_000
    assert column_values("Convolution", bottom, (1, 64, 10, 10, 10), (3, 3, 3),
                         limit=100) == 576 * 1_000


def test_the_python_constants_are_the_patchs():
    """core.memory names the patch's constants once; here they are read off the patch."""
    import re

    from core import memory

    patch = (REPO / "caffe-recipe" / "patches" / "0007-conv-column-chunks.patch").read_text()

    def constant(name: str) -> int:
        return int(re.search(rf"const int {name} = (\d+);", patch).group(1))

    assert (constant("kGemmBlock"), constant("kGemmColumns"),
            constant("kGemmNarrowColumns")) == (memory.GEMM_BLOCK, memory.GEMM_COLUMNS,
                                                memory.GEMM_NARROW_COLUMNS)
    assert f'std::getenv("{memory.COLUMN_LIMIT_VARIABLE}")' in patch
    assert "return size_t(1) << 25;" in patch and memory.DEFAULT_COLUMN_LIMIT == 1 << 25


# --- evaluation.runtime: the estimate, the refusals and the limit, on hand-counted nets ----------
def counted_net(tmp_path) -> caffe.Net:
    """Every kind of value the estimate counts, small enough to count by hand: a grouped
    3×3 convolution (its columns), a max pooling (its argmax), a 1×1 convolution (no
    columns), a deconvolution (its columns by the top) and a softmax loss (its
    probabilities)."""
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 4, 10, 12]))
    n.label = L.Input(shape=dict(dim=[1, 1, 5, 6]))
    n.conv = L.Convolution(n.data, num_output=6, kernel_size=3, pad=1, group=2)
    n.pool = L.Pooling(n.conv, pool=caffe.params.Pooling.MAX, kernel_size=2, stride=2)
    n.score = L.Convolution(n.pool, num_output=3, kernel_size=1)
    n.up = L.Deconvolution(n.score, convolution_param=dict(num_output=3, kernel_size=4,
                                                           stride=2, bias_term=False))
    n.loss = L.SoftmaxWithLoss(n.score, n.label)
    return shape_only_net(tmp_path, n)


# blobs: data 480, label 30, conv 720, pool 180, score 90 and its two split copies (Caffe
# inserts a Split layer for a blob read twice), up 3 × 12 × 14 = 504, loss 1; hidden: the
# pooling's argmax (180) and the loss's probabilities (90)
COUNTED_VALUES = 480 + 30 + 720 + 180 + 3 * 90 + 504 + 1 + 180 + 90
COUNTED_PARAMS = (6 * 2 * 9 + 6) + (3 * 6 + 3) + 3 * 3 * 16
# the grouped convolution's whole matrix: 4 channels × 9 taps × 120 positions (the
# deconvolution's: 3 × 16 × 30 = 1,440; the 1×1 convolution's: none)
COUNTED_COLUMNS = 4 * 9 * 120


def test_the_estimate_counts_blobs_parameters_hidden_copies_and_the_largest_columns(tmp_path):
    net = counted_net(tmp_path)
    assert runtime._counts(net) == (COUNTED_VALUES, COUNTED_PARAMS, COUNTED_COLUMNS,
                                    COUNTED_COLUMNS)
    assert runtime.forward_bytes(net) == 4 * (COUNTED_VALUES + COUNTED_PARAMS + COUNTED_COLUMNS)
    assert runtime.forward_bytes(net, training=True) == \
        4 * (2 * (COUNTED_VALUES + COUNTED_PARAMS) + COUNTED_COLUMNS)


def test_a_size_clearly_too_big_is_refused_at_twice_the_limit_scaled_by_the_padded_area(
        tmp_path):
    """220×12 is twice the padded area of 10×12 ((220 + 200) × 212 against 210 × 212):
    values and columns double, parameters do not; refused above twice the limit only."""
    net = counted_net(tmp_path)
    rough = 4 * (2 * COUNTED_VALUES + COUNTED_PARAMS + 2 * COUNTED_COLUMNS)
    runtime.refuse_clearly_too_big(net, 220, 12, "a test", limit=rough // 2)  # at it: kept
    with pytest.raises(runtime.OutOfMemory) as refused:
        runtime.refuse_clearly_too_big(net, 220, 12, "a test", limit=rough // 2 - 1,
                                       fix="the fix")
    assert str(refused.value) == (
        f"a test needs about {rough / 2**30:.2f} GiB (scaled from the net's blob shapes), "
        f"more than the {(rough // 2 - 1) / 2**30:.2f} GiB available; the fix")
    train = 4 * (2 * (2 * COUNTED_VALUES + COUNTED_PARAMS) + 2 * COUNTED_COLUMNS)
    runtime.refuse_clearly_too_big(net, 220, 12, "a test", limit=train // 2, training=True)
    with pytest.raises(runtime.OutOfMemory):
        runtime.refuse_clearly_too_big(net, 220, 12, "a test", limit=train // 2 - 1,
                                       training=True)
    # the picture's blob, when named, sets the scale: 210×6 is twice the label's padded
    # area (410 × 206 against 205 × 206), 1.9 times the data's
    with pytest.raises(runtime.OutOfMemory):
        runtime.refuse_clearly_too_big(net, 210, 6, "a test", limit=rough // 2 - 1,
                                       input_blob="label")
    runtime.refuse_clearly_too_big(net, 210, 6, "a test", limit=rough // 2 - 1)
    assert tuple(net.blobs["data"].shape) == (1, 4, 10, 12)  # nothing reshaped


def test_a_buffer_past_what_caffe_can_hold_is_refused_whatever_the_limit(tmp_path):
    """The largest buffer (the 4,320 columns) scaled past 2^31 − 1 values: Blob::Reshape
    would CHECK-abort. At 12 wide, the scale is (height + 200) / 210."""
    net = counted_net(tmp_path)
    edge = (2**31 - 1) * 210 // COUNTED_COLUMNS - 200  # the last height that stays within
    assert COUNTED_COLUMNS * (edge + 200) / 210 <= 2**31 - 1
    runtime.refuse_clearly_too_big(net, edge, 12, "a test", limit=2**62)
    scale = (edge + 1 + 200) / 210
    rough = 4 * (COUNTED_VALUES * scale + COUNTED_PARAMS + COUNTED_COLUMNS * scale)
    with pytest.raises(runtime.OutOfMemory) as refused:
        runtime.refuse_clearly_too_big(net, edge + 1, 12, "a test", limit=2**62, fix="the fix")
    assert str(refused.value) == (
        f"a test needs a buffer of about 2.15e+09 values, more than the 2^31 values Caffe "
        f"can hold in one (and about {rough / 2**30:.1f} GiB in all); the fix")


def tiny_estimate(height: int, width: int, training: bool = False, classes: int = 3) -> int:
    """forward_bytes of testkit's tiny deploy net (conv 3×3 → max pool 2 → score 1×1 → 2×
    deconvolution → crop) at an even height×width, counted by hand: data and its two split
    copies, conv1 (4 channels, ReLU in place), the pooling and its argmax, score_fr, upscore
    ((h/2 − 1)·2 + 4 = h + 2 high), score; conv1's columns (27 rows, whole below Caffe's
    column limit) are the largest."""
    hw = height * width
    values = 3 * 3 * hw + 4 * hw + 2 * hw + classes * hw // 4 \
        + classes * (height + 2) * (width + 2) + classes * hw
    params = (4 * 3 * 9 + 4) + (classes * 4 + classes) + classes * classes * 16
    return 4 * ((2 if training else 1) * (values + params) + 27 * hw)


def test_a_reshape_and_a_training_step_are_estimated_at_the_new_size(tmp_path):
    from testkit.tiny_nets import write_tiny_deploy

    deploy = write_tiny_deploy(tmp_path / "deploy.prototxt")
    net = caffe.Net(str(deploy), caffe.TEST)
    assert runtime.reshape_checked(net, 20, 24, "a test", limit=2**40) == tiny_estimate(20, 24)
    assert tuple(net.blobs["data"].shape) == tuple(net.blobs["score"].shape[:1]) + (3, 20, 24)
    assert tuple(net.blobs["score"].shape) == (1, 3, 20, 24)
    assert runtime.reshape_checked(net, 40, 30, "a test", limit=2**40, training=True) == \
        tiny_estimate(40, 30, training=True)
    assert runtime.training_bytes(deploy, 32, 40, limit=2**40) == \
        tiny_estimate(32, 40, training=True)
    with pytest.raises(runtime.OutOfMemory,
                       match=r"^a training step on a 32×40 picture needs about .* GiB"):
        runtime.training_bytes(deploy, 32, 40, limit=tiny_estimate(32, 40, training=True))
    # before Caffe sees it (the scale assumes FCN's padding of 100: this net has none, so
    # the picture is large enough for the padded scale to pass 2^31 values)
    with pytest.raises(runtime.OutOfMemory, match="2\\^31 values"):
        runtime.reshape_checked(net, 61000, 61000, "a test", limit=2**62)
    assert tuple(net.blobs["data"].shape) == (1, 3, 40, 30)


def test_a_net_without_fcns_padding_is_grown_in_steps_and_refused_before_caffe_aborts(
        tmp_path):
    """refuse_clearly_too_big scales by FCN's padded area; testkit's tiny deploy net has no
    padding, so 30000×30000 from 40×30 passed it, and Caffe's Blob::Reshape aborted the
    process (a glog CHECK past 2^31 values). Grown in steps that each stay within Caffe, it
    is one clear refusal, and the net keeps its shape. In a child: an abort ends it."""
    from testkit.tiny_nets import write_tiny_deploy

    deploy = write_tiny_deploy(tmp_path / "deploy.prototxt")
    child = subprocess.run(
        [sys.executable, "-c", f"""
import caffe
from evaluation import runtime
net = caffe.Net({str(deploy)!r}, caffe.TEST)
runtime.reshape_checked(net, 40, 30, "a test", limit=2**62)
try:
    runtime.reshape_checked(net, 30000, 30000, "a 30000x30000 picture", limit=2**62)
except runtime.OutOfMemory as e:
    print(e)
print(tuple(net.blobs["data"].shape))
print(runtime.reshape_checked(net, 700, 650, "a test", limit=2**62))
"""], capture_output=True, text=True, cwd=REPO, check=False)
    assert child.returncode == 0, child.stderr[-2000:]
    refusal, shape, grown = child.stdout.splitlines()
    assert refusal.startswith("a 30000x30000 picture needs a buffer of about ")
    assert refusal.endswith("more than the 2^31 values Caffe can hold in one; scale the "
                            "picture down or free memory")
    assert shape == "(1, 3, 40, 30)"
    assert int(grown) == tiny_estimate(700, 650)  # reached in steps, figured exactly


@pytest.fixture()
def stepped(tmp_path, monkeypatch):
    """testkit's tiny deploy net at 40×30 and the list of the shapes reshape_checked gives
    its inputs, in order (its largest buffer is conv1's columns: 27 × h × w values)."""
    from testkit.tiny_nets import write_tiny_deploy

    net = caffe.Net(str(write_tiny_deploy(tmp_path / "deploy.prototxt")), caffe.TEST)
    runtime.reshape_checked(net, 40, 30, "a test", limit=2**40)
    shapes: list[tuple[int, int]] = []
    reshape = runtime._reshape_inputs

    def recorded(net, height, width):
        shapes.append((height, width))
        reshape(net, height, width)

    monkeypatch.setattr(runtime, "_reshape_inputs", recorded)
    return net, shapes


def test_a_larger_size_is_reached_in_steps_that_at_most_double_each_side(stepped):
    net, shapes = stepped
    assert runtime.reshape_checked(net, 300, 100, "a test", limit=2**40) == \
        tiny_estimate(300, 100)
    assert shapes == [(80, 60), (160, 100), (300, 100), (300, 100)]
    shapes.clear()  # one side shrinks at once, the other grows by doubling
    assert runtime.reshape_checked(net, 50, 400, "a test", limit=2**40) == \
        tiny_estimate(50, 400)
    assert shapes == [(50, 200), (50, 400), (50, 400)]
    shapes.clear()  # smaller or equal: no step
    runtime.reshape_checked(net, 50, 400, "a test", limit=2**40)
    runtime.reshape_checked(net, 40, 30, "a test", limit=2**40)
    assert shapes == [(50, 400), (40, 30)]


@pytest.mark.parametrize("target, growth", [((80, 60), 4), ((80, 30), 2), ((40, 60), 2),
                                            ((60, 45), 2.25)])
def test_a_step_is_taken_while_its_largest_buffer_grown_by_a_quarter_more_fits_caffe(
        stepped, monkeypatch, target, growth):
    """The step's area growth × 1.25 × the largest buffer now (conv1's 32,400 columns at
    40×30) may reach Caffe's limit, not pass it."""
    net, shapes = stepped
    edge = int(27 * 40 * 30 * growth * 5 / 4)
    monkeypatch.setattr(runtime, "CAFFE_BLOB_LIMIT", edge)
    runtime.reshape_checked(net, *target, "a test", limit=2**40)
    assert tuple(net.blobs["data"].shape[2:]) == target
    runtime.reshape_checked(net, 40, 30, "a test", limit=2**40)
    shapes.clear()
    monkeypatch.setattr(runtime, "CAFFE_BLOB_LIMIT", edge - 1)
    with pytest.raises(runtime.OutOfMemory, match=r"^a test needs a buffer of about "):
        runtime.reshape_checked(net, *target, "a test", limit=2**40)
    assert shapes == [(40, 30)] and tuple(net.blobs["data"].shape[2:]) == (40, 30)


def test_a_step_is_checked_against_the_largest_blob_when_no_convolution_has_columns(
        tmp_path, monkeypatch):
    """A 1×1 convolution takes no column buffer (Caffe's own case): the largest buffer is
    then its 16-channel top, 16 × 40 × 30 = 19,200 values, and a step doubling both sides
    may reach 19,200 × 4 × 1.25 = 96,000, not pass it."""
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 3, 40, 30]))
    n.wide = L.Convolution(n.data, num_output=16, kernel_size=1, bias_term=False)
    deploy = tmp_path / "one-by-one.prototxt"
    deploy.write_text(str(n.to_proto()))
    net = caffe.Net(str(deploy), caffe.TEST)
    monkeypatch.setattr(runtime, "CAFFE_BLOB_LIMIT", 96_000)
    runtime.reshape_checked(net, 80, 60, "a test", limit=2**40)
    runtime.reshape_checked(net, 40, 30, "a test", limit=2**40)
    monkeypatch.setattr(runtime, "CAFFE_BLOB_LIMIT", 95_999)
    with pytest.raises(runtime.OutOfMemory, match="2\\^31 values"):
        runtime.reshape_checked(net, 80, 60, "a test", limit=2**40)
    runtime.reshape_checked(net, 1, 1, "a test", limit=2**40)  # from a single pixel too
    shapes = []
    reshape = runtime._reshape_inputs
    monkeypatch.setattr(runtime, "_reshape_inputs",
                        lambda net, h, w: shapes.append((h, w)) or reshape(net, h, w))
    runtime.reshape_checked(net, 8, 3, "a test", limit=2**40)
    assert shapes == [(2, 2), (4, 3), (8, 3), (8, 3)]


def test_a_step_refused_midway_names_the_targets_buffer_and_leaves_the_net_as_it_was(
        stepped, monkeypatch):
    """40×30 → 80×60 fits (32,400 × 4 × 1.25 = 162,000); 80×60 → 150×90 does not (conv1's
    129,600 columns × 1.875 × 1.5 × 1.25 = 455,625): the refusal scales the last exact
    figure to the target (129,600 × 2.8125)."""
    net, shapes = stepped
    monkeypatch.setattr(runtime, "CAFFE_BLOB_LIMIT", 450_000)
    with pytest.raises(runtime.OutOfMemory) as refused:
        runtime.reshape_checked(net, 150, 90, "a 150×90 picture", limit=2**40, fix="fix")
    assert str(refused.value) == ("a 150×90 picture needs a buffer of about 3.64e+05 values, "
                                  "more than the 2^31 values Caffe can hold in one; fix")
    assert shapes == [(80, 60), (40, 30)]
    assert tuple(net.blobs["data"].shape[2:]) == (40, 30)


def test_the_check_refuses_an_estimate_over_three_quarters_of_the_limit(tmp_path):
    """At a size whose estimate is a multiple of 3 bytes, a limit of 4/3 of it is just
    enough; a byte less is refused, with the estimate grossed up by the headroom."""
    from testkit.tiny_nets import write_tiny_deploy

    net = caffe.Net(str(write_tiny_deploy(tmp_path / "deploy.prototxt", classes=2)),
                    caffe.TEST)
    side = next(w for w in range(1000, 1010, 2) if tiny_estimate(1000, w, classes=2) % 3 == 0)
    net.blobs["data"].reshape(1, 3, 1000, side)
    net.reshape()
    need = tiny_estimate(1000, side, classes=2)
    assert runtime.HEADROOM == 0.75
    assert runtime.check_memory(net, "a test", limit=need * 4 // 3) == need
    with pytest.raises(runtime.OutOfMemory) as refused:
        runtime.check_memory(net, "a test", limit=need * 4 // 3 - 1, fix="the fix")
    assert str(refused.value) == (
        f"a test needs about {need / 0.75 / 2**30:.2f} GiB (estimated from the net's blob "
        f"shapes, with room for the process around it), more than the "
        f"{(need * 4 // 3 - 1) / 2**30:.2f} GiB available; the fix")
    training = tiny_estimate(1000, side, training=True, classes=2)
    with pytest.raises(runtime.OutOfMemory):
        runtime.check_memory(net, "a test", limit=training * 4 // 3 - 3, training=True)
    assert runtime.check_memory(net, "a test", limit=training * 2, training=True) == training


def meminfo_available() -> int:
    for line in open("/proc/meminfo"):
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no MemAvailable in /proc/meminfo")


@pytest.mark.parametrize("limit, flag, held", [("RLIMIT_AS", "-v", "VmSize"),
                                               ("RLIMIT_DATA", "-d", "VmData")])
def test_an_address_space_or_data_limit_bounds_what_this_process_may_take(monkeypatch, limit,
                                                                          flag, held):
    """A soft limit 256 MiB above what this process holds leaves it 256 MiB (less what it
    takes meanwhile), named as `ulimit` would set it; a limit that leaves more than is
    available changes nothing; one already passed leaves nothing. Set in this process for
    a moment (the hard limit stays, so it is raised back)."""
    import resource

    from core.memory import status_bytes

    which = getattr(resource, limit)
    saved = resource.getrlimit(which)
    if saved[0] != resource.RLIM_INFINITY:
        pytest.skip(f"{limit} is already set here ({saved[0]})")
    soft = (status_bytes(held) + 256 * 2**20) // 1024 * 1024
    if soft >= meminfo_available():
        pytest.skip("less memory available than this process holds and 256 MiB")
    try:
        resource.setrlimit(which, (soft, saved[1]))
        left, words = runtime.memory_limit()
        also = runtime.available_memory()
        monkeypatch.setattr(runtime, "status_bytes", lambda field: soft + 1)
        passed = runtime.memory_limit()
        monkeypatch.setattr(runtime, "status_bytes", lambda field: soft - 3 * 2**20 if
                            field == held else soft)
        exact = runtime.memory_limit()
        monkeypatch.setattr(runtime, "status_bytes", lambda field: soft - 2**62)
        roomy = runtime.memory_limit()
        monkeypatch.setattr(runtime, "status_bytes", lambda field: None)
        unread = runtime.memory_limit()
    finally:
        resource.setrlimit(which, saved)
    assert 240 * 2**20 < left <= 256 * 2**20 and 240 * 2**20 < also <= 256 * 2**20
    assert words == (f"that the limit `ulimit {flag} {soft // 1024}` ({soft / 2**30:.2f} "
                     f"GiB) leaves this process")
    assert passed[0] == 0 and exact == (3 * 2**20, words)
    assert roomy[1] == "available" and 0.9 < roomy[0] / meminfo_available() < 1.1
    assert unread == (soft, words)  # /proc/self/status unreadable: nothing held


def test_without_a_limit_what_is_available_bounds_it():
    import resource

    if any(resource.getrlimit(r)[0] != resource.RLIM_INFINITY
           for r in (resource.RLIMIT_AS, resource.RLIMIT_DATA)):
        pytest.skip("a memory limit is set here")
    before = meminfo_available()
    left, words = runtime.memory_limit()
    assert words == "available" and 0.95 < left / before < 1.05
    assert 0.95 < runtime.available_memory() / before < 1.05


def test_memavailable_is_read_in_kib_and_physical_memory_stands_in_without_it(monkeypatch,
                                                                            tmp_path):
    """/proc/meminfo's MemAvailable in KiB; a kernel without it (before 3.14), or no
    /proc at all, leaves the physical memory. A limit that leaves exactly what is available
    is not named as the bound."""
    import os
    import resource

    meminfo = tmp_path / "meminfo"
    monkeypatch.setattr(runtime, "Path", lambda name: meminfo)
    unlimited = all(resource.getrlimit(r)[0] == resource.RLIM_INFINITY
                    for r in (resource.RLIMIT_AS, resource.RLIMIT_DATA))
    if not unlimited:
        pytest.skip("a memory limit is set here")
    meminfo.write_text("MemTotal:       8000000 kB\nMemAvailable:      1000 kB\n")
    assert runtime.memory_limit() == (1_024_000, "available")
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    meminfo.write_text("MemTotal:       8000000 kB\nMemFree:      1000 kB\n")
    assert runtime.memory_limit() == (physical, "available")
    meminfo.unlink()
    assert runtime.memory_limit() == (physical, "available")
    meminfo.write_text("MemAvailable:      1000 kB\n")
    saved = resource.getrlimit(resource.RLIMIT_DATA)
    soft = (runtime.status_bytes("VmData") + 256 * 2**20) // 1024 * 1024
    monkeypatch.setattr(runtime, "status_bytes", lambda field: soft - 1_024_000)
    try:
        resource.setrlimit(resource.RLIMIT_DATA, (soft, saved[1]))
        at_it = runtime.memory_limit()
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, saved)
    assert at_it == (1_024_000, "available")


def test_only_a_1x1_convolution_of_stride_1_without_padding_skips_the_columns(tmp_path):
    """Caffe's 1×1 case reads its input directly; a 1×1 of stride 2 still fills 8 channels
    × 5 × 6 positions, one padded by 1 fills 8 × 12 × 14. An inner product has parameters
    but no columns."""
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 8, 10, 12]))
    n.plain = L.Convolution(n.data, num_output=4, kernel_size=1, bias_term=False)
    n.strided = L.Convolution(n.data, num_output=4, kernel_size=1, stride=2, bias_term=False)
    n.fc = L.InnerProduct(n.data, num_output=2)
    net = shape_only_net(tmp_path, n)
    values = 960 + 3 * 960 + 4 * 120 + 4 * 30 + 2  # data, its three split copies, the tops
    assert runtime._counts(net) == (values, 2 * 32 + 2 * 960 + 2, 8 * 30, 960)
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 8, 10, 12]))
    n.plain = L.Convolution(n.data, num_output=4, kernel_size=1, bias_term=False)
    n.padded = L.Convolution(n.data, num_output=4, kernel_size=1, pad=1, bias_term=False)
    net = shape_only_net(tmp_path, n)
    assert runtime._counts(net)[2] == 8 * 12 * 14


def test_a_deconvolutions_group_comes_from_its_top_and_no_convolution_has_no_columns(
        tmp_path):
    """A 6 → 3 channel deconvolution (weights 6 × 3 × 4 × 4: group 1, read off the top's 3
    channels) fills 3 × 16 rows × 30 positions; a net of no convolution fills none."""
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 6, 5, 6]))
    n.up = L.Deconvolution(n.data, convolution_param=dict(num_output=3, kernel_size=4,
                                                          stride=2, bias_term=False))
    net = shape_only_net(tmp_path, n)
    assert runtime._counts(net)[2] == 3 * 16 * 30
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 2, 4, 4]))
    n.pool = L.Pooling(n.data, pool=caffe.params.Pooling.MAX, kernel_size=2, stride=2)
    net = shape_only_net(tmp_path, n)
    assert runtime._counts(net) == (32 + 8 + 8, 0, 0, 32)
    assert runtime.forward_bytes(net) == 4 * 48


def test_the_limits_own_words_name_it_in_a_refusal(tmp_path, monkeypatch):
    """Without a limit given, the refusal names what memory_limit says bounds it."""
    net = counted_net(tmp_path)
    monkeypatch.setattr(runtime, "memory_limit", lambda: (1000, "that the test allows"))
    with pytest.raises(runtime.OutOfMemory, match="GiB that the test allows; "):
        runtime.check_memory(net, "a test")
    with pytest.raises(runtime.OutOfMemory, match="GiB that the test allows; "):
        runtime.refuse_clearly_too_big(net, 100, 100, "a test")
