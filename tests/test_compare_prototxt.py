"""compare on prototxt: bytes, parsed messages, param_str as literals, first differing field."""

from pathlib import Path

import pytest

from compare.cli import compare_files, main
from core.caffe_files import CaffeFileError
from testkit.tiny_nets import flip_bit, write_tiny_deploy

PYTHON_LAYER = '''layer {
  name: "data"
  type: "Python"
  top: "data"
  python_param {
    module: "voc_layers"
    layer: "VOCSegDataLayer"
    param_str: "%s"
  }
}
'''


def _python_net(path: Path, param_str: str) -> Path:
    path.write_text(PYTHON_LAYER % param_str)
    return path


def test_identical_bytes_exit_zero(tmp_path, capsys):
    a = write_tiny_deploy(tmp_path / "a.prototxt")
    b = tmp_path / "b.prototxt"
    b.write_bytes(a.read_bytes())
    assert main([str(a), str(b)]) == 0
    assert capsys.readouterr().out.strip().endswith("IDENTICAL")


def test_one_bit_change_names_first_differing_field(tmp_path, capsys):
    a = write_tiny_deploy(tmp_path / "a.prototxt", classes=3)
    text = a.read_bytes()
    offset = text.index(b"num_output: 3") + len(b"num_output: ")
    b = flip_bit(a, tmp_path / "b.prototxt", offset, bit=0)   # '3' (0x33) -> '2' (0x32)
    assert main([str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert "layer[4] 'score_fr'.convolution_param.num_output  <- first" in out
    assert f"first differs at byte {offset}" in out
    assert out.strip().endswith("DIFFERENT")


def test_param_str_compared_as_python_literals(tmp_path):
    a = _python_net(tmp_path / "a.prototxt", "{'split': 'train', 'seed': 1337}")
    b = _python_net(tmp_path / "b.prototxt", "{'seed': 1337, 'split': 'train'}")
    strict = compare_files(a, b)
    assert not strict.identical
    assert ("message", "equal", "equal (param_str as Python literals)") in strict.rows
    assert compare_files(a, b, semantic=True).identical


def test_param_str_difference_reported_per_key(tmp_path):
    a = _python_net(tmp_path / "a.prototxt", "{'split': 'train', 'seed': 1337}")
    b = _python_net(tmp_path / "b.prototxt", "{'seed': 1338, 'split': 'train'}")
    result = compare_files(a, b, semantic=True)
    assert not result.identical
    assert ("layer[0] 'data'.python_param.param_str['seed']  <- first", "1337", "1338") \
        in result.rows


def test_missing_layer_reported_as_absent(tmp_path):
    a = write_tiny_deploy(tmp_path / "a.prototxt", extra_layer=True)
    b = write_tiny_deploy(tmp_path / "b.prototxt")
    result = compare_files(a, b)
    assert not result.identical
    paths = [row[0] for row in result.rows]
    assert any(p.startswith("layer[3] 'conv1b'.name") for p in paths)
    assert any("(absent)" in row[2] for row in result.rows)


def test_solver_prototxt_and_mixed_kinds(tmp_path):
    a = tmp_path / "a_solver.prototxt"
    a.write_text('train_net: "train.prototxt"\nbase_lr: 1e-10\nmomentum: 0.99\n')
    b = tmp_path / "b_solver.prototxt"
    b.write_text('train_net: "train.prototxt"\nbase_lr: 1e-14\nmomentum: 0.99\n')
    result = compare_files(a, b)
    assert ("parsed as", "SolverParameter", "SolverParameter") in result.rows
    assert result.rows[-1][:1] == ("base_lr  <- first",)
    net = write_tiny_deploy(tmp_path / "net.prototxt")
    mixed = compare_files(a, net)
    assert ("parsed as", "SolverParameter", "NetParameter") in mixed.rows


def test_malformed_prototxt_is_a_clear_error(tmp_path, capsys):
    a = write_tiny_deploy(tmp_path / "a.prototxt")
    b = tmp_path / "b.prototxt"
    b.write_text(a.read_text().replace("num_output: 3", "num_output: three"))
    with pytest.raises(CaffeFileError, match=r"b\.prototxt: not a net or solver prototxt"):
        compare_files(a, b)
    assert main([str(a), str(b)]) == 2
    assert "b.prototxt" in capsys.readouterr().err
