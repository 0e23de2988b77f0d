"""compare on prototxt: bytes, parsed messages, param_str as literals, first differing field."""

from pathlib import Path

import pytest

from compare.cli import compare_files, main
from compare.prototxt import first_byte_difference
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


def test_first_byte_difference_gives_the_offset_and_its_line():
    assert first_byte_difference(b"ab\ncd\nef", b"ab\ncd\nxf") == (6, 3)
    assert first_byte_difference(b"ab\ncd", b"ab\nce") == (4, 2)
    assert first_byte_difference(b"xb", b"ab") == (0, 1)
    assert first_byte_difference(b"abc", b"abc\n") == (3, 1)     # one is a prefix
    assert first_byte_difference(b"abc\n\n", b"abc") == (3, 1)


def test_identical_and_formatting_only_results_in_full(tmp_path):
    a = write_tiny_deploy(tmp_path / "a.prototxt")
    same = compare_files(a, a)
    size = a.stat().st_size
    assert same.identical and same.rows == [("bytes", f"{size} bytes", "identical")]
    assert same.notes == []
    b = tmp_path / "b.prototxt"
    b.write_text("# a comment\n" + a.read_text())
    for semantic in (False, True):
        result = compare_files(a, b, semantic=semantic)
        assert result.identical is semantic
        assert result.rows == [
            ("bytes", f"{size} bytes", f"{size + 12} bytes; first differs at byte 0 (line 1)"),
            ("parsed as", "NetParameter", "NetParameter"),
            ("message", "equal", "equal (param_str as Python literals)")]
        assert result.notes == ["bytes differ only in formatting, comments or param_str "
                                "spelling"]
    solver = tmp_path / "solver.prototxt"
    solver.write_text('base_lr: 0.001\n')
    mixed = compare_files(a, solver, semantic=True)
    assert not mixed.identical and mixed.rows[-1] == ("parsed as", "NetParameter",
                                                      "SolverParameter")
    assert mixed.notes == ["the two files describe different kinds of message"]


def test_many_differences_are_counted_to_fifty_and_the_first_ten_shown(tmp_path):
    def net(path, prefix, n):
        path.write_text("".join(f'layer {{ name: "{prefix}{i}" type: "ReLU" }}\n'
                                for i in range(n)))
        return path
    a, b = net(tmp_path / "a.prototxt", "a", 60), net(tmp_path / "b.prototxt", "b", 60)
    result = compare_files(a, b, semantic=True)
    assert not result.identical
    assert result.rows[2] == ("message", "differs", "50+ fields differ")
    assert len(result.rows) == 3 + 10
    assert result.rows[3] == ("layer[0] 'a0'.name  <- first", "'a0'", "'b0'")
    assert result.rows[-1] == ("layer[9] 'a9'.name", "'a9'", "'b9'")
    few = compare_files(net(tmp_path / "c.prototxt", "a", 3), net(tmp_path / "d.prototxt",
                                                                 "b", 3))
    assert few.rows[2] == ("message", "differs", "3 fields differ") and len(few.rows) == 6
    assert few.rows[4][0] == "layer[1] 'a1'.name"
    assert few.notes == []


def test_enum_fields_are_named_as_the_prototxt_writes_them(tmp_path):
    """A pooling method, a V1 layer type, a solver's type: their names (MAX, AVE), not the
    numbers protobuf keeps (0, 1), as in the files compared."""
    pooling = ('layer {{ name: "pool" type: "Pooling" bottom: "x" top: "y" '
               'pooling_param {{ pool: {} kernel_size: 2 stride: 2 }} }}\n')
    a, b = tmp_path / "a.prototxt", tmp_path / "b.prototxt"
    a.write_text(pooling.format("MAX"))
    b.write_text(pooling.format("AVE"))
    assert ("layer[0] 'pool'.pooling_param.pool  <- first", "MAX", "AVE") in \
        compare_files(a, b).rows
    v1 = 'layers {{ name: "relu" type: {} bottom: "x" top: "x" }}\n'
    a.write_text(v1.format("RELU"))
    b.write_text(v1.format("SIGMOID"))
    assert ("layers[0] 'relu'.type  <- first", "RELU", "SIGMOID") in compare_files(a, b).rows
    b.write_text('layers { name: "relu" bottom: "x" top: "x" }\n')  # type left out
    assert ("layers[0] 'relu'.type  <- first", "RELU", "(absent)") in compare_files(a, b).rows
