"""Limits of the machine are errors, not aborts or bare `[Errno N]` lines: a memory limit
(ulimit -v) before scoring a picture too large for it names the picture, the limit and a
fix; a folder this process may not write, a full disk and a file-size limit met while
writing name the file, what was being written and the fix, and leave no half-written file
(core.errors.describe_os_error, through cli_main). Real commands in subprocesses."""

import errno
import os
import subprocess
import sys
from pathlib import Path

import caffe
import numpy as np
import pytest
from PIL import Image

from core.catalog import FOLDERS
from core.errors import describe_os_error
from data.synthetic import SBDD_LAYOUT, make_dataset, sbdd_struct, write_jpeg, write_mat
from nets.generate import write_experiment
from training.init import random_init

REPO = Path(__file__).resolve().parents[1]
LIMIT_KIB = 8_000_000  # `ulimit -v 8000000`: about 7.6 GiB of address space


def python(*args, limits: str = "", setpriv: tuple[str, ...] = (), timeout=300):
    """The project's Python under `limits` (bash ulimit settings) in a subprocess."""
    command = " ".join(f"'{a}'" for a in (*setpriv, sys.executable, *args))
    return subprocess.run(["bash", "-c", f"{limits}{'; ' if limits else ''}exec {command}"],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "GLOG_minloglevel": "2"})


def one_line(done, code: int) -> str:
    """The one error line, last on stderr (a forced write's note may come before it)."""
    assert done.returncode == code, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "[Errno" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert ": error: " in lines[-1] and sum(": error: " in x for x in lines) == 1, done.stderr
    return lines[-1]


def weights_at(width: float, folder: Path) -> Path:
    paths = write_experiment("voc-fcn32s", folder / "nets", width=width)
    net = caffe.Net(str(paths["deploy"]), caffe.TEST)
    random_init(net, 3)
    net.save(str(folder / "w.caffemodel"))
    return folder / "w.caffemodel"


# --- memory limits -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def huge(tmp_path_factory):
    """A VOC root whose one seg11valid picture (and its label) is 3000×3000."""
    root = make_dataset("voc", tmp_path_factory.mktemp("data"), n_train=1, n_val=1,
                        num_classes=3, size=(32, 40), seed=7)
    voc = root / "pascal/VOC2011"
    (index,) = (voc / "ImageSets/Segmentation/seg11valid.txt").read_text().split()
    picture = voc / "JPEGImages" / f"{index}.jpg"
    Image.open(picture).resize((3000, 3000), Image.NEAREST).save(picture, quality=90)
    label = voc / "SegmentationClass" / f"{index}.png"
    Image.open(label).resize((3000, 3000), Image.NEAREST).save(label)
    return root, picture


@pytest.mark.fault("clear error", guards="traceback")
def test_score_under_a_memory_limit_names_the_picture_the_limit_and_a_fix(huge, tmp_path):
    root, picture = huge
    weights = weights_at(0.25, tmp_path)
    out = tmp_path / "scores.json"
    done = python("-m", "evaluation.score", "--net", "voc-fcn32s", "--weights", str(weights),
                  "--data", str(root), "--width", "0.25", "--json", str(out), "--save",
                  str(tmp_path / "labels"), limits=f"ulimit -v {LIMIT_KIB}")
    err = one_line(done, 1)
    assert f"{picture}: scoring this 3000×3000 picture needs about" in err
    assert f"that the limit `ulimit -v {LIMIT_KIB}`" in err and "leaves this process" in err
    assert "make infer … MEMORY=" in err and "ulimit -v unlimited" in err
    assert not out.exists() and not list((tmp_path / "labels").glob("*"))


@pytest.fixture(scope="module")
def huge_train(tmp_path_factory):
    """A VOC root whose one SBD train picture (and its label) is 3000×3000."""
    root = make_dataset("voc", tmp_path_factory.mktemp("data"), n_train=1, n_val=1,
                        num_classes=3, size=(32, 40), seed=7)
    (index,) = (root / FOLDERS["sbdd"] / SBDD_LAYOUT.split_file("train")[1]).read_text().split()
    picture = root / FOLDERS["sbdd"] / SBDD_LAYOUT.file("data", index)
    label = np.zeros((3000, 3000), np.uint8)
    label[1000:2000, 1000:2000] = 1
    write_jpeg(picture, np.asarray(Image.open(picture).resize((3000, 3000), Image.NEAREST)))
    write_mat(root / FOLDERS["sbdd"] / SBDD_LAYOUT.file("label", index),
              {"GTcls": sbdd_struct(label)})
    return root, picture


@pytest.mark.fault("clear error", guards="abort")
def test_training_under_a_memory_limit_names_the_picture_the_limit_and_a_fix(huge_train,
                                                                             tmp_path):
    """A short run (no --check-data) meets the picture only at its step: refused there,
    not aborted in Caffe's allocator."""
    root, picture = huge_train
    done = python("-m", "training.train", "voc-fcn32s", "--data", str(root), "--run-dir",
                  str(tmp_path / "run"), "--width", "0.25", "--weights", "none", "--iters",
                  "2", "--test-every", "0", "--quiet", limits=f"ulimit -v {LIMIT_KIB}")
    err = one_line(done, 1)
    assert "Check failed" not in done.stderr and "allocation" not in done.stderr
    assert f"{picture}: a training step on a 3000×3000 picture needs about" in err
    assert f"that the limit `ulimit -v {LIMIT_KIB}`" in err and "leaves this process" in err
    assert "lower WIDTH, or train where there is more memory" in err


@pytest.mark.fault("correct", guards="traceback")
def test_the_memory_limit_bounds_the_tiling_budget():
    probe = ("from evaluation.runtime import memory_limit; from evaluation.tiling import "
             "default_budget; limit, words = memory_limit(); print(limit, default_budget()); "
             "print(words)")
    done = python("-c", probe, limits="ulimit -v 4000000")
    assert done.returncode == 0, done.stderr
    numbers, words = done.stdout.splitlines()
    limit, budget = map(int, numbers.split())
    assert 0 < limit < 4_000_000 * 1024 and budget == limit // 2
    assert "ulimit -v 4000000" in words


# --- errors of the operating system while writing -----------------------------------------
@pytest.fixture(scope="module")
def fcn32s(tmp_path_factory):
    return weights_at(0.0625, tmp_path_factory.mktemp("run"))


def noise_pictures(folder: Path, count: int, size: int = 256) -> Path:
    """Pictures of noise: their overlays do not compress (tens of KiB each)."""
    folder.mkdir()
    rng = np.random.RandomState(0)
    for k in range(count):
        Image.fromarray(rng.randint(0, 256, (size, size, 3), np.uint8)).save(
            folder / f"p{k}.png")
    return folder


def infer(pictures: Path, weights: Path, out: Path, *more: str, **how):
    return python("-m", "evaluation.infer", str(pictures), "--net", "voc-fcn32s", "--weights",
                  str(weights), "--out", str(out), "--width", "0.0625", *more, **how)


@pytest.mark.fault("clear error", guards="trusted-corrupt")
def test_a_full_disk_while_writing_names_the_file_and_leaves_no_half_file(fcn32s, tmp_path):
    pictures = noise_pictures(tmp_path / "pictures", 3)
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (not root)")
    try:
        done = infer(pictures, fcn32s, disk / "out")
        err = one_line(done, 1)
        written = sorted(p.name for p in (disk / "out").iterdir())
        sizes = {p.name: p.stat().st_size for p in (disk / "out").iterdir()}
    finally:
        subprocess.run(["umount", str(disk)], check=True)
    failed = err.split("infer: error: ")[1].split(":")[0]
    assert "No space left on device (while writing " in err
    assert "the disk is full" in err and "free there" in err and "free some space" in err
    assert Path(failed).name not in written  # the file it could not finish is not left
    assert all(sizes.values()), sizes


@pytest.mark.fault("clear error", guards="unclear")
def test_a_file_size_limit_while_writing_names_the_file_and_the_limit(fcn32s, tmp_path):
    pictures = noise_pictures(tmp_path / "pictures", 1)
    out = tmp_path / "out"
    done = infer(pictures, fcn32s, out, limits="ulimit -f 16")
    err = one_line(done, 1)
    assert f"{out / 'p0_overlay.jpg'}: File too large (while writing an overlay picture" in err
    assert "the file-size limit (ulimit -f) is 16.0 KiB: raise it (ulimit -f unlimited)" in err
    assert not (out / "p0_overlay.jpg").exists()


@pytest.mark.fault("clear error", guards="unclear")
def test_a_file_this_process_may_not_write_names_it_and_the_fix(fcn32s, tmp_path):
    """As root, permissions bind only without CAP_DAC_OVERRIDE: the command runs without it
    (setpriv), and an earlier label, read-only, stands where --force writes a new one."""
    pictures = noise_pictures(tmp_path / "pictures", 1, size=32)
    out = tmp_path / "out"
    out.mkdir()
    earlier = out / "p0.png"
    earlier.write_bytes(b"an earlier label")
    earlier.chmod(0o444)
    drop = ("setpriv", "--bounding-set=-dac_override,-dac_read_search")
    if os.geteuid() != 0 or subprocess.run([*drop, "true"], capture_output=True).returncode:
        pytest.skip("needs root and setpriv to drop the permission override")
    done = infer(pictures, fcn32s, out, "--force", setpriv=drop)
    err = one_line(done, 1)
    assert f"{earlier}: Permission denied (while writing a label picture" in err
    assert "change the permissions of" in err
    assert earlier.read_bytes() == b"an earlier label"


@pytest.mark.fault("correct", guards="unclear")
def test_the_projects_own_os_errors_keep_their_words():
    own = OSError(errno.ENOSPC, "run/train.log: cannot append to the log; free some space")
    assert describe_os_error(own) == "run/train.log: cannot append to the log; free some space"
    try:
        open("/nonexistent-folder/x.json", "w")
    except OSError as e:
        message = describe_os_error(e)
    assert message.startswith("/nonexistent-folder/x.json: No such file or directory (in ")
    assert "check the path (is /nonexistent-folder there?)" in message
