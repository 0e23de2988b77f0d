"""Exports never leave a failed file where a good one is expected, never write over their
weights, and take paths with spaces whole from make: the ONNX file and the PyTorch module
are written aside and moved to OUT only once verified against Caffe (export/cli.py), then
vouched for by a manifest that every reader checks (core/manifest.py)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from bench import engines
from core.errors import InputError
from core.manifest import export_manifest, sha256
from export.onnx_export import main as onnx_main
from export.torch_export import main as torch_main
from nets.experiments import build
from testkit.optional import require_modules
from testkit.random_weights import random_caffemodel

require_modules("onnx", "onnxruntime", "torch")  # both exporters run beside Caffe

REPO = Path(__file__).resolve().parents[1]
WIDTH = "0.0625"
NO_EXPORT_AGREES = ("--min-agreement", "1.01")  # more than every pixel: verification fails


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights with spaces") / "fcn32s weights.caffemodel"
    return random_caffemodel(build("voc-fcn32s", "deploy", width=float(WIDTH)), path, seed=6)


def _args(weights, out, *extra):
    return ["--net", "voc-fcn32s", "--weights", str(weights), "--width", WIDTH, "--out",
            str(out), "--sizes", "1x1", *extra]


@pytest.mark.parametrize("main,out", [(onnx_main, "m.onnx"), (torch_main, "torch")])
@pytest.mark.fault("clear error", guards="trusted-corrupt")
def test_a_failed_export_leaves_nothing_at_out(main, out, weights, tmp_path, capsys):
    assert main(_args(weights, tmp_path / out, *NO_EXPORT_AGREES)) == 1
    err = capsys.readouterr().err
    assert "FAILED verification" in err and "nothing was left at" in err
    assert not (tmp_path / "m.onnx").exists()
    assert not list(tmp_path.rglob("*.py")) and not list(tmp_path.rglob("*.pt"))
    assert not list(tmp_path.rglob("*.part"))  # the staging folder is gone too


@pytest.mark.fault("clear error", guards="lost")
def test_a_failed_export_keeps_the_earlier_good_one(weights, tmp_path, capsys):
    path = tmp_path / "m.onnx"
    assert onnx_main(_args(weights, path)) == 0
    good = path.read_bytes()
    other = random_caffemodel(build("voc-fcn32s", "deploy", width=float(WIDTH)),
                              tmp_path / "other.caffemodel", seed=7)
    assert onnx_main(_args(other, path, *NO_EXPORT_AGREES)) == 1
    assert path.read_bytes() == good


@pytest.mark.fault("clear error", guards="lost")
def test_an_onnx_export_pointed_at_its_weights_is_refused(weights, capsys):
    before = weights.read_bytes()
    assert onnx_main(_args(weights, weights)) == 2
    err = capsys.readouterr().err
    assert f"{weights}: cannot be written (OUT=/--out): it is the weights" in err, err
    assert weights.read_bytes() == before


@pytest.mark.parametrize("target,written", [("onnx", "out m.onnx"), ("torch", "voc_fcn32s.py")])
@pytest.mark.fault("correct", guards="unclear")
def test_make_passes_export_paths_with_spaces_whole(target, written, weights, tmp_path):
    out = tmp_path / "my exports" / ("out m.onnx" if target == "onnx" else "torch out")
    done = subprocess.run(["make", "--no-print-directory", "-o", "setup", "-o", "venv", "-o",
                           "export-deps", "-o", "bench-torch", target, "NET=voc-fcn32s",
                           f"WEIGHTS={weights}", f"OUT={out}", f"WIDTH={WIDTH}", "SIZES=1x1"],
                          cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "GLOG_minloglevel": "2"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "unrecognized arguments" not in done.stderr
    assert (out if target == "onnx" else out / written).is_file()


EXPORTS = [(onnx_main, "m.onnx", ["m.onnx"]),
           (torch_main, "torch", ["voc_fcn32s.py", "voc_fcn32s.pt"])]


def _export(main, out, files, weights, tmp_path) -> list[Path]:
    """A verified export at tmp_path/out; its files' paths."""
    assert main(_args(weights, tmp_path / out)) == 0
    folder = tmp_path if out.endswith(".onnx") else tmp_path / out
    return [folder / name for name in files]


@pytest.mark.fault("correct", guards="trusted-corrupt")
@pytest.mark.parametrize("main,out,files", EXPORTS, ids=["onnx", "torch"])
def test_a_verified_export_carries_a_manifest_of_its_files(main, out, files, weights,
                                                           tmp_path):
    paths = _export(main, out, files, weights, tmp_path)
    manifest = json.loads(export_manifest(paths[0]).read_text())
    assert {name: entry["sha256"] for name, entry in manifest["files"].items()} == \
        {p.name: sha256(p) for p in paths}
    assert all(manifest["files"][p.name]["bytes"] == p.stat().st_size for p in paths)
    assert manifest["weights"]["sha256"] == sha256(weights)
    assert (manifest["net"], manifest["width"]) == ("voc-fcn32s", float(WIDTH))
    check = manifest["verification"]
    assert check["sizes"] == ["1x1"] and 0 <= check["max_rel"] <= check["rtol"]
    assert check["argmax_agreement"] >= check["min_agreement"]
    assert ("onnxruntime" if out.endswith(".onnx") else "torch") in manifest["versions"]


def _flip_last_byte(path: Path) -> tuple[str, str]:
    """Damage `path` by one bit; its (recorded, found) sha256."""
    recorded = sha256(path)
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    return recorded, sha256(path)


@pytest.mark.fault("clear error", guards="trusted-corrupt")
@pytest.mark.parametrize("main,out,files", EXPORTS, ids=["onnx", "torch"])
def test_a_flipped_byte_in_an_export_is_refused_naming_both_digests(main, out, files,
                                                                    weights, tmp_path,
                                                                    capsys):
    damaged = _export(main, out, files, weights, tmp_path)[-1]  # the weights file
    recorded, found = _flip_last_byte(damaged)
    capsys.readouterr()
    assert main(_args(weights, tmp_path / out, "--check-existing")) == 2
    err = capsys.readouterr().err
    assert f"{damaged}: sha256 {found}, but" in err and f"records {recorded}" in err, err


@pytest.mark.fault("clear error", guards="trusted-corrupt")
def test_make_bench_refuses_a_damaged_export(weights, tmp_path):
    (path,) = _export(onnx_main, "m.onnx", ["m.onnx"], weights, tmp_path)
    recorded, found = _flip_last_byte(path)
    with pytest.raises(InputError) as refused:
        engines.session("onnxruntime", path, 1, (1, 3, 1, 1))
    assert f"sha256 {found}" in str(refused.value) and recorded in str(refused.value)
