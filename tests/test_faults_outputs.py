"""Outputs never overwrite inputs (core/outputs.py): an output pointed at the weights, into
the ground truth or over an existing data root is refused before any work, the input left
byte for byte as it was; an earlier result is written over only with FORCE=1 / --force,
which says what it replaces. The guard runs before Caffe is loaded, so the weights here
need not be a trained net: the claim is that nothing is read or written."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import InputError
from core.outputs import Output, check_outputs
from data.synthetic import make_dataset

REPO = Path(__file__).resolve().parents[1]


def run(*args, timeout=120):
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "GLOG_minloglevel": "2"})


def make(*args, timeout=120):
    return subprocess.run(["make", "--no-print-directory", "-o", "setup", "-o", "venv", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "GLOG_minloglevel": "2"})


def digest_of(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def voc(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return make_dataset("voc", root, n_train=1, n_val=2, num_classes=3, size=(32, 40), seed=3)


@pytest.fixture
def weights(tmp_path):
    path = tmp_path / "run" / "final.caffemodel"
    path.parent.mkdir()
    path.write_bytes(b"\x0a\x07weights" * 10)
    return path


@pytest.mark.fault("clear error", guards="lost")
def test_make_score_with_json_at_the_weights_refuses_and_keeps_them(voc, weights):
    before = weights.read_bytes()
    done = make("score", "NET=voc-fcn32s", f"WEIGHTS={weights}", f"DATA={voc}",
                f"JSON={weights}")
    assert done.returncode != 0
    assert f"{weights}: cannot be written (JSON=/--json): it is the weights" in done.stderr
    assert "Traceback" not in done.stderr
    assert weights.read_bytes() == before


@pytest.mark.fault("clear error", guards="lost")
def test_score_save_into_the_ground_truth_is_refused_and_the_labels_kept(voc, weights):
    labels = voc / "pascal/VOC2011/SegmentationClass"
    before = digest_of(voc)
    done = run("-m", "evaluation.score", "--net", "voc-fcn32s", "--weights", str(weights),
               "--data", str(voc), "--save", str(labels))
    assert done.returncode == 1, done.stderr
    assert "(SAVE=/--save): it lies inside the data root" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert digest_of(voc) == before


@pytest.mark.fault("clear error", guards="lost")
def test_score_json_over_an_earlier_result_needs_force(voc, weights, tmp_path):
    earlier = tmp_path / "score.json"
    earlier.write_text('{"earlier": true}\n')
    done = run("-m", "evaluation.score", "--net", "voc-fcn32s", "--weights", str(weights),
               "--data", str(voc), "--json", str(earlier))
    assert done.returncode == 1
    assert "already exists" in done.stderr and "FORCE=1 (make) / --force" in done.stderr
    assert earlier.read_text() == '{"earlier": true}\n'


@pytest.mark.fault("clear error", guards="lost")
def test_make_synthetic_over_an_existing_data_root_refuses_then_forced_says_so(tmp_path):
    root = make_dataset("voc", tmp_path / "data", n_train=1, n_val=1, size=(32, 40), seed=1)
    before = digest_of(root)
    done = make("synthetic", "DATASET=voc", f"OUT={root}", "N_TRAIN=1", "N_VAL=1",
                "SIZE=32 40", "SEED=2")
    assert done.returncode != 0
    assert f"{root / 'sbdd/dataset'}: the folder" in done.stderr
    assert "an earlier result (OUT=, the data root)" in done.stderr
    assert digest_of(root) == before
    done = make("synthetic", "DATASET=voc", f"OUT={root}", "N_TRAIN=1", "N_VAL=1",
                "SIZE=32 40", "SEED=2", "FORCE=1")
    assert done.returncode == 0, done.stderr
    assert "synthetic: replacing what the folder" in done.stderr
    assert digest_of(root) != before


@pytest.mark.fault("correct", guards="lost")
def test_synthetic_beside_another_dataset_is_not_an_overwrite(tmp_path):
    root = make_dataset("voc", tmp_path / "data", n_train=1, n_val=1, size=(32, 40), seed=1)
    done = run("-m", "data.synthetic", "siftflow", str(root), "--n-train", "1", "--n-val",
               "1", "--size", "32", "40")
    assert done.returncode == 0, done.stderr
    assert (root / "sift-flow").is_dir() and (root / "sbdd/dataset").is_dir()


@pytest.mark.fault("clear error", guards="lost")
def test_infer_out_holding_its_input_picture_is_refused(weights, tmp_path):
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    picture = pictures / "a.png"
    picture.write_bytes(b"not read")
    done = run("-m", "evaluation.infer", str(picture), "--net", "voc-fcn32s", "--weights",
               str(weights), "--out", str(pictures))
    assert done.returncode == 1
    assert "(OUT=/--out): it holds the input" in done.stderr
    assert picture.read_bytes() == b"not read"


@pytest.mark.fault("clear error", guards="lost")
def test_a_symlink_to_an_input_is_the_input(weights, tmp_path):
    link = tmp_path / "scores.json"
    link.symlink_to(weights)
    with pytest.raises(InputError, match="it is the weights"):
        check_outputs([Output("JSON=/--json", link)], {"the weights": weights}, force=True)


@pytest.mark.fault("clear error", guards="lost")
def test_forcing_says_what_is_replaced_and_never_overrides_an_input(weights, tmp_path):
    earlier = tmp_path / "preds"
    earlier.mkdir()
    (earlier / "x.png").write_bytes(b"p")
    lines = check_outputs([Output("SAVE=/--save", earlier, folder=True)], {}, force=True)
    assert lines == [f"replacing what the folder {earlier} already holds 1 entry "
                     f"(SAVE=/--save, forced)"]
    with pytest.raises(InputError, match="it is the weights"):
        check_outputs([Output("JSON=/--json", weights)], {"the weights": weights}, force=True)


@pytest.mark.fault("clear error", guards="lost")
def test_zoo_out_at_the_run_folder_holding_the_weights_is_refused_even_forced(weights):
    before = digest_of(weights.parent)
    done = run("-m", "zoo.export", "--net", "voc-fcn32s", "--weights", str(weights), "--out",
               str(weights.parent), "--force")
    assert done.returncode == 2
    assert "(OUT=/--out): it holds the weights (WEIGHTS=/--weights)" in done.stderr
    assert digest_of(weights.parent) == before


@pytest.mark.fault("clear error", guards="lost")
def test_a_run_folder_inside_the_data_root_is_refused_before_training(voc):
    before = digest_of(voc)
    runs = voc / "pascal" / "runs"
    done = run("-m", "training.schedule", "voc-fcn32s", "--data", str(voc), "--runs",
               str(runs), "--weights", "none", "--iters", "1", "--width", "0.0625", "--quiet")
    assert done.returncode == 1, done.stderr
    assert f"{runs}: cannot be written (RUNS=/--run-dir): it lies inside the data root" \
        in done.stderr
    assert not runs.exists() and digest_of(voc) == before


@pytest.mark.fault("clear error", guards="lost")
def test_a_training_run_folder_at_the_data_root_is_refused(voc):
    before = digest_of(voc)
    done = run("-m", "training.train", "voc-fcn32s", "--data", str(voc), "--run-dir",
               str(voc), "--weights", "none", "--iters", "1", "--width", "0.0625", "--quiet")
    assert done.returncode == 1, done.stderr
    assert f"{voc}: cannot be written (RUNS=/--run-dir): it is the data root" in done.stderr
    assert digest_of(voc) == before
