"""The export commands: export, verify, report; fail on a perturbed export; one clear
error for bad input."""

from __future__ import annotations

import numpy as np
import pytest

from core.manifest import export_manifest
from export.onnx_export import main as onnx_main
from export.torch_export import main as torch_main
from nets.experiments import build
from testkit.optional import require_modules
from testkit.random_weights import random_caffemodel

require_modules("onnx", "onnxruntime", "torch")  # both exporters run beside Caffe

WIDTH = "0.0625"


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """voc-fcn16s at width 1/16 with random weights, as a caffemodel."""
    path = tmp_path_factory.mktemp("weights") / "fcn16s.caffemodel"
    return random_caffemodel(build("voc-fcn16s", "deploy", width=float(WIDTH)), path, seed=5)


def _args(weights, out, *extra, net="voc-fcn16s"):
    return ["--net", net, "--weights", str(weights), "--width", WIDTH, "--out", str(out),
            "--sizes", "1x1,37x51", *extra]


@pytest.mark.parametrize("main,out", [(onnx_main, "m.onnx"), (torch_main, "torch")])
def test_export_writes_verifies_and_reports_every_size(main, out, weights, tmp_path, capsys):
    assert main(_args(weights, tmp_path / out)) == 0
    report = capsys.readouterr().out
    assert "export: wrote" in report
    for size in ("1×1", "37×51"):
        row = next(line for line in report.splitlines() if line.strip().startswith(size))
        assert "score" in row and row.endswith("ok")
    assert "agrees with Caffe at every size" in report


@pytest.mark.parametrize("main,out,decoy", [(onnx_main, "m.onnx", "m.caffemodel"),
                                            (torch_main, "torch", "voc_fcn16s.caffemodel")])
def test_the_reported_size_counts_only_the_files_written(main, out, decoy, weights, tmp_path,
                                                         capsys):
    """A file beside the export that shares its stem (here 3 MB) is not the export's."""
    folder = tmp_path if out.endswith(".onnx") else tmp_path / out
    folder.mkdir(exist_ok=True)
    (folder / decoy).write_bytes(bytes(3_000_000))
    assert main(_args(weights, tmp_path / out, "--no-verify")) == 0
    written = [tmp_path / out] if out.endswith(".onnx") else \
        [folder / "voc_fcn16s.py", folder / "voc_fcn16s.pt"]
    size_mb = sum(p.stat().st_size for p in written) / 1e6
    assert f"({size_mb:.1f} MB with its weights)" in capsys.readouterr().out


def _failed(main, argv, capsys) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "FAILED verification" in err and "Traceback" not in err
    return err


def test_a_perturbed_onnx_export_fails_verification(weights, tmp_path, capsys):
    import onnx
    from onnx import numpy_helper
    path = tmp_path / "m.onnx"
    assert onnx_main(_args(weights, path)) == 0
    model = onnx.load(str(path))
    for i, init in enumerate(model.graph.initializer):
        if init.name == "score_fr.weight":
            changed = numpy_helper.to_array(init) * np.float32(1.001)
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(changed, init.name))
    onnx.save(model, str(path))
    export_manifest(path).unlink()  # else its digest is refused before Caffe is asked
    capsys.readouterr()
    err = _failed(onnx_main, _args(weights, path, "--check-existing"), capsys)
    assert "score at 1×1: max rel" in err and "> 1e-05" in err


def test_a_perturbed_torch_export_fails_verification(weights, tmp_path, capsys):
    import torch
    assert torch_main(_args(weights, tmp_path)) == 0
    state_path = tmp_path / "voc_fcn16s.pt"
    state = torch.load(state_path, weights_only=True)
    state["upscore16.weight"][0, 0, 5, 5] += 0.5   # one weight of the final upsampling
    torch.save(state, state_path)
    export_manifest(state_path).unlink()  # else its digest is refused before Caffe is asked
    capsys.readouterr()
    err = _failed(torch_main, _args(weights, tmp_path, "--check-existing"), capsys)
    assert "score at 37×51: max rel" in err


def test_the_tolerance_is_the_stated_one(weights, tmp_path, capsys):
    """A tolerance of zero fails the same export that passes at 1e-5 (Caffe and onnxruntime
    sum in different orders), so the check compares real numbers, not shapes."""
    path = tmp_path / "m.onnx"
    assert onnx_main(_args(weights, path)) == 0
    report = capsys.readouterr().out
    rel = [float(line.split()[3]) for line in report.splitlines() if " score " in line]
    assert rel and max(rel) <= 1e-5
    if max(rel) > 0:
        _failed(onnx_main, _args(weights, path, "--check-existing", "--rtol", "0"), capsys)


def _one_clear_error(main, argv, capsys, *expected: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{main.cli_prog}: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for text in expected:
        assert text in err
    return err


@pytest.mark.parametrize("main", [onnx_main, torch_main])
def test_an_unknown_net_is_one_clear_error(main, weights, tmp_path, capsys):
    _one_clear_error(main, _args(weights, tmp_path / "x", net="voc-fcn9s"), capsys,
                     "unknown NET 'voc-fcn9s'", "voc-fcn8s")


def test_weights_of_another_width_are_one_clear_error(weights, tmp_path, capsys):
    argv = _args(weights, tmp_path / "m.onnx")
    argv[argv.index("--width") + 1] = "0.125"
    _one_clear_error(onnx_main, argv, capsys, "layer conv1_1 blob 0 has shape (4, 3, 3, 3)",
                     "voc-fcn16s at WIDTH=0.125 expects (8, 3, 3, 3)")


def test_weights_of_another_net_are_one_clear_error(weights, tmp_path, capsys):
    _one_clear_error(torch_main, _args(weights, tmp_path, net="voc-fcn32s"), capsys,
                     "no weights for voc-fcn32s at WIDTH=0.0625's layers upscore", "NET")


def test_a_file_that_is_no_caffemodel_is_one_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.caffemodel"
    bad.write_bytes(b"\xff" * 64)
    _one_clear_error(onnx_main, _args(bad, tmp_path / "m.onnx"), capsys,
                     "bad.caffemodel: not a readable caffemodel")
    _one_clear_error(onnx_main, _args(tmp_path / "none.caffemodel", tmp_path / "m.onnx"),
                     capsys, "none.caffemodel: caffemodel not found")


def test_a_bad_size_is_one_clear_error(weights, tmp_path, capsys):
    argv = _args(weights, tmp_path / "m.onnx")
    argv[argv.index("--sizes") + 1] = "0x3"
    _one_clear_error(onnx_main, argv, capsys, "at least 1x1")


def test_an_unreadable_picture_is_one_clear_error(weights, tmp_path, capsys):
    picture = tmp_path / "picture.jpg"
    picture.write_text("not a jpeg")
    _one_clear_error(onnx_main, _args(weights, tmp_path / "m.onnx", "--image", str(picture)),
                     capsys, "picture.jpg: not a picture PIL can read")


def test_verification_on_a_given_picture(weights, tmp_path, capsys):
    from PIL import Image
    picture = tmp_path / "picture.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 30, 3), np.uint8)).save(
        picture)
    assert onnx_main(_args(weights, tmp_path / "m.onnx", "--image", str(picture))) == 0
    assert "agrees with Caffe" in capsys.readouterr().out


def test_checking_a_missing_export_is_one_clear_error(weights, tmp_path, capsys):
    _one_clear_error(onnx_main, _args(weights, tmp_path / "m.onnx", "--check-existing"),
                     capsys, "no such export to check")
