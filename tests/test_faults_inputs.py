"""Ordinary mistakes give one clear error (the file, the cause, the fix), never a Caffe
abort, a traceback or numbers that mean nothing: weights that do not cover the net, a net
Caffe cannot build, a decompression bomb, a picture too large for memory, a read-only
output, a full disk, paths with spaces, a byte-order mark, compare's exit codes."""

import os
import shutil
import struct
import subprocess
import sys
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data.synthetic import make_dataset
from training import snapshots
from training.check_data import check_split
from training.train import TrainConfig, train

REPO = Path(__file__).resolve().parents[1]
WIDTH = 0.0625


def env() -> dict:
    return {**os.environ, "GLOG_minloglevel": "2"}


@pytest.fixture(scope="module")
def voc(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return make_dataset("voc", root, n_train=3, n_val=2, num_classes=3, size=(32, 40), seed=6)


@pytest.fixture(scope="module")
def fcn32s(voc, tmp_path_factory):
    """FCN-32s weights after one iteration."""
    run = tmp_path_factory.mktemp("fcn32s")
    return train(TrainConfig("voc-fcn32s", voc, run_dir=run, weights=None, iters=1,
                             test_every=0, width=WIDTH, overrides={"base_lr": 1e-6},
                             progress=False)).final_weights


def python(*args, timeout=300):
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env(), capture_output=True,
                          text=True, timeout=timeout)


def make(*args, timeout=300):
    return subprocess.run(["make", "--no-print-directory", "-o", "setup", "-o", "venv", *args],
                          cwd=REPO, env=env(), capture_output=True, text=True, timeout=timeout)


def picture(path, size=(40, 32)):
    Image.fromarray(np.random.RandomState(0).randint(0, 255, (*size[::-1], 3), np.uint8)
                    ).save(path)
    return path


# --- weights that do not cover the net ----------------------------------------------------
@pytest.mark.fault("clear error", guards="silent")
def test_score_refuses_weights_missing_layers_and_names_them(voc, fcn32s):
    done = python("-m", "evaluation.score", "--net", "voc-fcn8s", "--weights", str(fcn32s),
                  "--data", str(voc), "--width", str(WIDTH))
    assert done.returncode == 1
    assert "no weights for 5 of the net's" in done.stderr
    for layer in ("score_pool4", "score_pool3", "upscore2", "upscore_pool4", "upscore8"):
        assert layer in done.stderr
    assert "mean IU" not in done.stdout
    allowed = [a for layer in ("score_pool4", "score_pool3", "upscore2", "upscore_pool4",
                               "upscore8") for a in ("--allow-missing", layer)]
    done = python("-m", "evaluation.score", "--net", "voc-fcn8s", "--weights", str(fcn32s),
                  "--data", str(voc), "--width", str(WIDTH), *allowed)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.fault("clear error", guards="silent")
def test_infer_refuses_weights_of_no_layer_of_the_net(voc, fcn32s, tmp_path):
    from caffe.proto import caffe_pb2

    other = caffe_pb2.NetParameter()
    layer = other.layer.add(name="unrelated", type="Convolution")
    layer.blobs.add().shape.dim.extend([1])
    layer.blobs[0].data.append(1.0)
    weights = tmp_path / "other.caffemodel"
    weights.write_bytes(other.SerializeToString())
    done = python("-m", "evaluation.infer", str(picture(tmp_path / "a.png")), "--net",
                  "voc-fcn32s", "--weights", str(weights), "--out", str(tmp_path / "out"),
                  "--width", str(WIDTH))
    assert done.returncode == 1 and "no weights for" in done.stderr and "conv1_1" in done.stderr
    assert not (tmp_path / "out" / "a.png").exists()


# --- nets Caffe cannot build --------------------------------------------------------------
BAD_NET = """
layer { name: "input" type: "Input" top: "data"
        input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
layer { name: "conv_zero" type: "Convolution" bottom: "data" top: "score"
        convolution_param { num_output: 2 kernel_size: 0 } }
"""


@pytest.mark.fault("clear error", guards="abort")
def test_infer_with_an_unbuildable_net_names_the_layer_instead_of_aborting(fcn32s, tmp_path):
    net = tmp_path / "deploy.prototxt"
    net.write_text(BAD_NET)
    done = python("-m", "evaluation.infer", str(picture(tmp_path / "a.png")), "--net", str(net),
                  "--weights", str(fcn32s), "--out", str(tmp_path / "out"))
    assert done.returncode == 1
    assert f"{net}: Caffe cannot build layer conv_zero" in done.stderr
    assert "Filter dimensions must be nonzero" in done.stderr and "Traceback" not in done.stderr


# --- pictures -----------------------------------------------------------------------------
def png_header_only(path, width, height):
    """A PNG that claims width×height pixels (its data is never reached)."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("side,says", [(30000, "900000000 pixels"), (12000, "12000×12000")])
@pytest.mark.fault("clear error", guards="abort")
def test_a_decompression_bomb_is_a_clear_error(fcn32s, tmp_path, side, says):
    """PIL itself refuses past twice its limit and only warns between once and twice."""
    bomb = png_header_only(tmp_path / "bomb.png", side, side)
    done = python("-m", "evaluation.infer", str(bomb), "--net", "voc-fcn32s", "--weights",
                  str(fcn32s), "--out", str(tmp_path / "out"), "--width", str(WIDTH))
    assert done.returncode == 1, done.stderr[-2000:]
    assert f"infer: error: {bomb}: " in done.stderr and "Traceback" not in done.stderr
    assert says in done.stderr


@pytest.mark.fault("clear error", guards="abort")
def test_a_picture_too_large_for_memory_is_refused_with_the_estimate(fcn32s):
    """Without a tiling budget (make infer always gives one: MEMORY=, evaluation/tiling.py),
    a forward that would not fit is refused before Caffe allocates."""
    from evaluation.infer import load_segmenter

    segmenter = load_segmenter("voc-fcn32s", fcn32s, width=WIDTH)
    small = segmenter.net
    segmenter.memory_limit = 50 * 2**20
    segmenter(np.zeros((32, 40, 3), np.uint8))  # fits
    from evaluation.runtime import forward_bytes

    at_small = forward_bytes(small)
    with pytest.raises(MemoryError, match=r"a 600×800 picture needs about .* GiB .* more "
                                          r"than the 0\.05 GiB"):
        segmenter(np.zeros((600, 800, 3), np.uint8))
    assert tuple(small.blobs["data"].shape[2:]) == (32, 40)  # refused before Caffe reshaped
    segmenter.memory_limit = None
    segmenter(np.zeros((240, 320, 3), np.uint8))
    assert forward_bytes(small) > 2 * at_small  # the estimate follows the picture
    with pytest.raises(MemoryError, match="more than the 2\\^31 values Caffe can hold"):
        segmenter(np.broadcast_to(np.uint8(0), (30000, 30000, 3)))  # Caffe would abort


# --- outputs that cannot be written -------------------------------------------------------
@contextmanager
def read_only_folder(path: Path):
    path.mkdir()
    if os.geteuid() != 0:
        path.chmod(0o555)
        yield path
        path.chmod(0o755)
        return
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot make a read-only folder here (root without mount)")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


@pytest.mark.fault("clear error", guards="lost")
def test_a_read_only_json_path_is_refused_before_scoring(voc, fcn32s, tmp_path):
    with read_only_folder(tmp_path / "ro") as ro:
        done = python("-m", "evaluation.score", "--net", "voc-fcn32s", "--weights", str(fcn32s),
                      "--data", str(voc), "--width", str(WIDTH), "--json",
                      str(ro / "score.json"))
    assert done.returncode == 1
    assert f"{ro / 'score.json'}: cannot be written" in done.stderr
    assert "images" not in done.stdout  # refused before the scoring ran


@pytest.mark.fault("clear error", guards="lost")
def test_a_read_only_out_folder_is_refused_before_inference(fcn32s, tmp_path):
    with read_only_folder(tmp_path / "ro") as ro:
        done = python("-m", "evaluation.infer", str(picture(tmp_path / "a.png")), "--net",
                      "voc-fcn32s", "--weights", str(fcn32s), "--out", str(ro / "out"),
                      "--width", str(WIDTH))
    assert done.returncode == 1 and "cannot be written" in done.stderr
    assert "a.png:" not in done.stdout  # no picture was labelled


@pytest.mark.fault("clear error", guards="lost")
def test_a_read_only_zoo_out_is_refused_before_exporting(fcn32s, tmp_path):
    with read_only_folder(tmp_path / "ro") as ro:
        done = python("-m", "zoo.export", "--net", "voc-fcn32s", "--weights", str(fcn32s),
                      "--out", str(ro / "zoo"))
    assert done.returncode == 2 and "cannot be written" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1  # one line, no traceback


@pytest.mark.fault("clear error", guards="traceback")
def test_a_read_only_synthetic_root_is_refused_in_one_line(tmp_path):
    with read_only_folder(tmp_path / "ro") as ro:
        done = python("-m", "data.synthetic", "voc", str(ro / "data"), "--n-train", "1",
                      "--n-val", "1")
    assert done.returncode == 1 and "cannot be written" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@contextmanager
def small_disk(path: Path, mib: float, monkeypatch):
    """A folder on a tmpfs of `mib` MiB (root with mount); elsewhere the same folder on
    the ordinary disk, whose free space the snapshot code is told is what a `mib` MiB disk
    would have left (the files in the folder count against it)."""
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={int(mib * 1024)}k", "tmpfs",
                           str(path)], capture_output=True)
    if done.returncode != 0:
        real = shutil.disk_usage

        def disk_usage(folder):
            used = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
            total = int(mib * 2**20)
            return real(folder)._replace(total=total, used=used, free=total - used)

        monkeypatch.setattr(snapshots.shutil, "disk_usage", disk_usage)
        yield path
        return
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


@pytest.mark.fault("clear error", guards="abort")
def test_disk_full_while_snapshotting_says_how_much_and_keeps_earlier_snapshots(
        voc, fcn32s, tmp_path, monkeypatch):
    snapshot_mib = fcn32s.stat().st_size / 2**20
    # room for the first snapshot's check (3 × weights + 4 MiB), not for the second's once
    # the first's two files (2 × weights) are on the disk
    with small_disk(tmp_path / "disk", 5 * snapshot_mib + 3.5, monkeypatch) as disk:
        run = disk / "run"
        with pytest.raises(snapshots.SnapshotSpaceError) as error:
            train(TrainConfig("voc-fcn32s", voc, run_dir=run, weights=None, iters=4,
                              test_every=0, snapshot_every=1, width=WIDTH,
                              overrides={"base_lr": 1e-6}, progress=False))
        message = error.value.strerror
        kept = snapshots.available(run / "snapshots")
        assert [s.iteration for s in kept] == [1]
        assert snapshots.verify(kept[0]) is None
        assert "not enough disk space for the snapshot at iteration 2" in message
        assert f"earlier snapshot {kept[0].solverstate} is intact" in message
        assert "MiB free" in message and "needs about" in message
        assert not list((run / "snapshots").glob("*iter_2*"))
        assert "disk full" in (run / "train.jsonl").read_text()


@pytest.mark.fault("clear error", guards="traceback")
def test_a_full_disk_under_the_logs_names_the_log(tmp_path):
    from training.runlog import RunLog

    (tmp_path / "train.log").symlink_to("/dev/full")  # every write: No space left on device
    with RunLog(tmp_path, echo=False) as log:
        with pytest.raises(OSError, match=r"train\.log: cannot append to the log \(No space"):
            log.say("hello")


# --- make: paths with spaces, compare's exit codes ----------------------------------------
@pytest.mark.fault("correct", guards="unclear")
def test_make_passes_paths_with_spaces_whole(voc, tmp_path):
    data = tmp_path / "my data"
    shutil.copytree(voc, data)
    done = make("check-data", "DATASET=voc", "SPLIT=train", f"DATA={data}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{data}/sbdd/dataset/train.txt: 3 examples, 0 bad" in done.stdout
    runs = tmp_path / "my runs"
    done = make("voc-fcn32s", f"DATA={data}", f"RUNS={runs}", "WEIGHTS=none", "ITERS=1",
                "TEST_EVERY=0", f"WIDTH={WIDTH}", "LR=1e-6")
    assert done.returncode == 0, done.stderr[-2000:]
    assert (runs / "voc-fcn32s" / "final.caffemodel").is_file()


@pytest.mark.fault("clear error", guards="unclear")
def test_make_compare_keeps_different_and_bad_input_apart(tmp_path):
    a, b = tmp_path / "a.prototxt", tmp_path / "b.prototxt"
    a.write_text('name: "a"\n')
    b.write_text('name: "b"\n')
    status = tmp_path / "status"
    done = make("compare", f"A={a}", f"B={b}", f"COMPARE_STATUS={status}")
    assert done.returncode == 2 and "DIFFERENT (compare.cli exit 1)" in done.stderr
    assert status.read_text().strip() == "1"
    done = make("compare", f"A={a}", f"B={tmp_path / 'missing.prototxt'}",
                f"COMPARE_STATUS={status}")
    assert done.returncode == 2 and "BAD INPUT (compare.cli exit 2)" in done.stderr
    assert status.read_text().strip() == "2"


# --- split lists ---------------------------------------------------------------------------
@pytest.mark.fault("correct", guards="silent")
def test_a_byte_order_mark_is_not_part_of_the_first_name(voc, tmp_path, monkeypatch):
    monkeypatch.setenv("FCN_DATA_CHECK_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "data"
    shutil.copytree(voc, data)
    listing = data / "sbdd/dataset/train.txt"
    listing.write_bytes(b"\xef\xbb\xbf" + listing.read_bytes())
    from nets.experiments import EXPERIMENTS

    report = check_split(EXPERIMENTS["voc-fcn32s"], data, "train", 0, progress=False)
    assert report.bad == [] and report.examples == 3


@pytest.mark.fault("clear error", guards="silent")
def test_check_data_lists_every_bad_file_and_caches_the_good(voc, tmp_path, monkeypatch):
    monkeypatch.setenv("FCN_DATA_CHECK_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "data"
    shutil.copytree(voc, data)
    names = (data / "sbdd/dataset/train.txt").read_text().split()
    (data / "sbdd/dataset/img" / f"{names[0]}.jpg").write_bytes(b"broken")
    (data / "sbdd/dataset/cls" / f"{names[2]}.mat").unlink()
    done = python("-m", "training.check_data", "voc", "train", "--data", str(data), "--quiet")
    assert done.returncode == 1
    assert f"{names[0]}.jpg is not a readable image" in done.stdout
    assert f"{names[2]}.mat: file not found" in done.stdout
    assert "3 examples, 2 bad (3 read, 0 unchanged since checked)" in done.stdout
    again = python("-m", "training.check_data", "voc", "train", "--data", str(data), "--quiet")
    assert "3 examples, 2 bad (2 read, 1 unchanged since checked)" in again.stdout


@pytest.mark.fault("clear error", guards="abort")
def test_compare_forward_with_an_unbuildable_net_is_bad_input_not_an_abort(fcn32s, tmp_path):
    net = tmp_path / "deploy.prototxt"
    net.write_text(BAD_NET)
    done = python("-m", "compare.cli", "--net-a", str(net), "--weights-a", str(fcn32s),
                  "--weights-b", str(fcn32s), "--input", str(picture(tmp_path / "a.png")))
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Caffe cannot build layer conv_zero" in done.stderr
