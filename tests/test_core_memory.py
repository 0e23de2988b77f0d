"""core.memory: the column buffer the recipe's Caffe asks for, and a process's own peak.

- The estimate evaluation.runtime makes from a real caffe.Net (inference, training) counts
  for a convolution over CAFFE_COLUMN_LIMIT the chunk caffe-recipe/patches/0007 allocates,
  not the whole im2col matrix (the measured side: tests/test_tiling.py's peaks).
- peak_rss_bytes in a child is the child's own peak, where ru_maxrss is the parent's size.
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
