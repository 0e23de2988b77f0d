"""Where Caffe runs and what it needs before a net is built: device, seeds, and the
dataset files a net will read.

Caffe aborts the process (a glog CHECK) on a missing split list or a GPU call in a CPU
build; everything here checks first and raises a Python error that says what to do.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

from core.caffe_files import read_prototxt
from core.catalog import DATASETS, split_list
from core.errors import ReportedError
from core.memory import column_values, status_bytes


def bar_interval() -> float:
    """Seconds between progress-bar updates: live on a terminal, every 30 s into a log file
    (a bar redrawn each iteration makes a log of megabytes)."""
    return 0.1 if sys.stderr.isatty() else 30.0


def check_gpu(device: int) -> None:
    """Raise unless this Caffe build can use GPU `device`. Probed in a child process:
    a CPU-only build or a missing device aborts the process that asks."""
    probe = f"import caffe; caffe.set_mode_gpu(); caffe.set_device({device})"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["(no output)"]
        fatal = [line.split("] ", 1)[-1] for line in lines if re.match(r"F\d+ ", line)]
        tail = (fatal or lines)[-1]
        raise RuntimeError(f"GPU {device} is not usable with this Caffe build ({tail}); "
                           f"build the GPU variant (make caffe CUDA=1) or leave GPU unset for "
                           f"the CPU")


def select_device(gpu: int | None) -> str:
    """CPU (gpu None) or GPU `gpu` for this process; returns a description."""
    # Caffe loads on use, so this module imports without it
    import caffe

    if gpu is None:
        caffe.set_mode_cpu()
        return "CPU"
    if gpu < 0:
        raise ValueError(f"GPU id must be 0 or more, got {gpu}")
    check_gpu(gpu)
    caffe.set_mode_gpu()
    caffe.set_device(gpu)
    return f"GPU {gpu}"


def check_data_root(exp, root: Path, splits: tuple[str, ...] | None = None) -> None:
    """Raise FileNotFoundError naming the first missing split list of `exp`'s phases
    (or of `splits`, read by the test-phase layer) and the target that fetches it."""
    root = Path(root)
    wanted = ([(0, exp.splits[0]), (1, exp.splits[1])] if splits is None
              else [(1, s) for s in splits])
    for phase_index, split in wanted:
        path = split_list(exp.dataset, exp.train_layer if phase_index == 0 else "test", root,
                          split)
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: split list not found for {exp.name} (dataset root {root}); fetch "
                f"the dataset with `make {DATASETS[exp.dataset].fetch_target}` or point DATA= at a "
                f"dataset root (`make synthetic DATASET={exp.dataset} OUT=ROOT` writes a "
                f"small synthetic one)")


class OutOfMemory(ReportedError, MemoryError):
    """A forward that would not fit in the memory this process may take, refused before
    Caffe allocates (its allocator aborts the process) or numpy fails with a traceback."""


def memory_limit() -> tuple[int, str]:
    """(bytes this process may still take, what bounds it, in words): the memory available
    now (MemAvailable; else physical memory), or less where an address-space or data limit
    (ulimit -v / -d) leaves less than that to this process."""
    import os
    import resource

    available, words = None, "available"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except OSError:
        pass
    if available is None:
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit, flag, held in ((resource.RLIMIT_AS, "-v", "VmSize"),
                              (resource.RLIMIT_DATA, "-d", "VmData")):
        soft = resource.getrlimit(limit)[0]
        if soft == resource.RLIM_INFINITY:
            continue
        left = max(0, soft - (status_bytes(held) or 0))
        if left < available:
            available = left
            words = (f"that the limit `ulimit {flag} {soft // 1024}` "
                     f"({soft / 2**30:.2f} GiB) leaves this process")
    return available, words


def available_memory() -> int:
    """Bytes of memory this process may still take (memory_limit's)."""
    return memory_limit()[0]


def _refusal(what: str, need: float, limit: int, words: str | None, fix: str,
             how: str) -> OutOfMemory:
    words = words if words is not None else "available"
    return OutOfMemory(f"{what} needs about {need / 2**30:.2f} GiB ({how}), more than the "
                       f"{limit / 2**30:.2f} GiB {words}; {fix}")


# layers holding a buffer the size of a blob that net.blobs does not list: a (max) pooling's
# argmax per top value, a softmax loss's probabilities per bottom value
HIDDEN_COPIES = ("Pooling", "SoftmaxWithLoss")
# share of the memory left that the estimate may fill: the Python process, the BLAS's
# buffers and numpy's copies of the picture and its scores are not in it (scoring a
# 3000×3000 picture, voc-fcn32s at width 1/4: estimated 6.13 GiB, peak resident 7.80 GiB,
# ratio 0.79, with patch 0007's column chunks; 11.2 and 12.9 GiB, 0.87, with whole columns)
HEADROOM = 0.75


def _counts(net, training: bool = False) -> tuple[int, int, int, int]:
    """(values in blobs, parameters, values of the im2col buffer every convolution shares in
    the recipe's Caffe (its largest request: core.memory.column_values), largest single
    buffer) of `net` at its current shapes. pycaffe shows no layer parameters, so a
    convolution's group comes from its weights' shape, and a 1×1 kernel that keeps the
    blob's size is taken as stride 1 without padding (Caffe's own 1×1 case: no columns)."""
    values = sum(blob.count for blob in net.blobs.values())
    params = sum(blob.count for blobs in net.params.values() for blob in blobs)
    columns = [0]
    for name, layer in zip(net._layer_names, net.layers):
        if layer.type in HIDDEN_COPIES:  # a max pooling's argmax, a loss's probabilities
            values += net.blobs[net.top_names[name][0] if layer.type == "Pooling"
                                else net.bottom_names[name][0]].count
        if layer.type not in ("Convolution", "Deconvolution") or name not in net.params:
            continue
        # weights: (outputs, inputs / group, kh, kw), a deconvolution's inputs being its top
        weights = net.params[name][0].shape
        bottom = net.blobs[net.bottom_names[name][0]].shape
        top = net.blobs[net.top_names[name][0]].shape
        image = top if layer.type == "Deconvolution" else bottom
        kernel = tuple(weights[2:])
        columns.append(column_values(
            layer.type, bottom, top, kernel, group=image[1] // weights[1],
            one_by_one=kernel == (1, 1) and tuple(bottom[2:]) == tuple(top[2:]),
            training=training))
    largest = max([blob.count for blob in net.blobs.values()] + columns)
    return values, params, max(columns), largest


def _bytes(values: float, params: int, columns: float, training: bool) -> float:
    """float32 values (and gradients when training) of blobs and parameters, plus the
    shared im2col buffer (reused by every convolution, forward and backward)."""
    return 4 * ((2 if training else 1) * (values + params) + columns)


def forward_bytes(net, training: bool = False) -> int:
    """Memory a forward (training: forward and backward) of `net` at its current shapes
    takes, from the blob shapes alone (call net.reshape() first; Caffe allocates lazily,
    so nothing is allocated by asking)."""
    values, params, columns, _ = _counts(net, training)
    return int(_bytes(values, params, columns, training))


CAFFE_BLOB_LIMIT = 2**31 - 1  # Blob::Reshape CHECK-aborts past INT_MAX values


FREE_MEMORY = "scale the picture down or free memory"


def _limit(limit: int | None) -> tuple[int, str | None]:
    """(the limit, its words): memory_limit()'s unless the caller gave one."""
    return memory_limit() if limit is None else (limit, "available")


def refuse_clearly_too_big(net, height: int, width: int, what: str, limit: int | None = None,
                           training: bool = False, fix: str = FREE_MEMORY,
                           input_blob: str | None = None) -> None:
    """Refuse (OutOfMemory) a height×width input that is clearly beyond `limit` or would
    make a blob Caffe cannot hold, from `net`'s figures at its current shapes scaled by the
    padded pixel ratio (FCN pads conv1_1 by 100): reshaping to it could itself abort Caffe
    (a blob over 2^31 values), so this comes before the reshape. `input_blob`: the blob
    the picture goes into (default the net's first input)."""
    limit, words = _limit(limit)
    now = net.blobs[input_blob or net.inputs[0]].shape
    scale = (height + 200) * (width + 200) / ((now[2] + 200) * (now[3] + 200))
    values, params, columns, largest = _counts(net, training)
    rough = _bytes(values * scale, params, columns * scale, training)
    if largest * scale > CAFFE_BLOB_LIMIT:
        raise OutOfMemory(f"{what} needs a buffer of about {largest * scale:.3g} values, more "
                          f"than the 2^31 values Caffe can hold in one (and about "
                          f"{rough / 2**30:.1f} GiB in all); {fix}")
    if rough > 2 * limit:
        raise _refusal(what, rough, limit, words, fix, "scaled from the net's blob shapes")


# A step of reshape_checked's growth at most doubles each side; its largest buffer may then
# grow a little more than the area (a convolution without padding shrinks its input by a
# fixed amount), so a step is taken only while 1.25 × the area's growth keeps it in Caffe.
GROWTH_MARGIN = 1.25


def _reshape_inputs(net, height: int, width: int) -> None:
    for name in net.inputs:
        net.blobs[name].reshape(1, net.blobs[name].shape[1], height, width)
    net.reshape()  # shapes only: Caffe allocates on first use


def reshape_checked(net, height: int, width: int, what: str, limit: int | None = None,
                    training: bool = False, fix: str = FREE_MEMORY) -> int:
    """Reshape `net`'s inputs to height×width and return the memory a step will take,
    refusing (OutOfMemory) beyond `limit` (default: what memory_limit() leaves): first a size
    clearly out of reach, before Caffe sees it (refuse_clearly_too_big), then the exact
    figure at the new shapes.

    refuse_clearly_too_big's scale is FCN's (conv1_1 padded by 100); a net from elsewhere
    grows otherwise. So a larger size is reached in steps that at most double each side,
    each taken only when the exact largest buffer at the last one, grown by the step, stays
    within what Caffe can hold: Caffe never sees a shape that aborts it, whatever the net."""
    refuse_clearly_too_big(net, height, width, what, limit, training, fix)
    now = was = tuple(net.blobs[net.inputs[0]].shape[2:]) if net.inputs else (height, width)
    while (now[0] < height or now[1] < width) and min(now) > 0:
        step = (min(height, 2 * now[0]), min(width, 2 * now[1]))
        growth = step[0] / now[0] * step[1] / now[1]
        largest = _counts(net, training)[3]
        if largest * growth * GROWTH_MARGIN > CAFFE_BLOB_LIMIT:
            scale = height / now[0] * width / now[1]
            _reshape_inputs(net, *was)  # a refused size leaves the net as it was
            raise OutOfMemory(f"{what} needs a buffer of about {largest * scale:.3g} values, "
                              f"more than the 2^31 values Caffe can hold in one; {fix}")
        _reshape_inputs(net, *step)
        now = step
    _reshape_inputs(net, height, width)
    return check_memory(net, what, limit, training, fix)


def check_memory(net, what: str, limit: int | None = None, training: bool = False,
                 fix: str = FREE_MEMORY) -> int:
    """Raise OutOfMemory before Caffe's allocator aborts the process: the estimate of
    forward_bytes against HEADROOM of `limit` (default: what memory_limit() leaves).
    Returns it."""
    need = forward_bytes(net, training)
    limit, words = _limit(limit)
    if need > HEADROOM * limit:
        raise _refusal(what, need / HEADROOM, limit, words, fix, "estimated from the net's "
                       "blob shapes, with room for the process around it")
    return need


def _shape_net(deploy: Path):
    """A deploy net built without fillers: only its parameters are allocated."""
    # Caffe loads on use, so this module imports without it
    import caffe
    from google.protobuf import text_format

    # surgery.definition imports Caffe: loaded on use, so this module imports without it
    from surgery.definition import without_fillers

    with tempfile.TemporaryDirectory(prefix="fcn-memory-") as tmp:
        probe = Path(tmp) / "deploy.prototxt"
        probe.write_text(text_format.MessageToString(without_fillers(read_prototxt(deploy))))
        net = caffe.Net(str(probe), caffe.TEST)
    return net


def training_bytes(deploy: Path, height: int, width: int, limit: int | None = None) -> int:
    """The memory one training step on a height×width picture takes (deploy net with every
    input at that size; built without fillers, so only its parameters are allocated);
    MemoryError beyond `limit` (default: what is available)."""
    net = _shape_net(deploy)
    return reshape_checked(net, height, width, f"a training step on a {height}×{width} "
                                                f"picture", limit, training=True)
