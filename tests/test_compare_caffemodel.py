"""compare on caffemodels: blob by blob bitwise, max |Δ| and ULP, missing layers, shapes."""

import os
import shutil

import caffe
import numpy as np
import pytest
from caffe.proto import caffe_pb2

from compare import numeric
from compare.caffemodel import definition_difference, first_definition_difference
from compare.cli import compare_files, main
from compare.numeric import ArrayDiff, compare_arrays, ordered_bits, ulp_distance
from core.caffe_files import CaffeFileError, read_caffemodel
from testkit.tiny_nets import flip_bit, random_caffemodel, write_tiny_deploy


@pytest.fixture
def model(tmp_path):
    deploy = write_tiny_deploy(tmp_path / "deploy.prototxt")
    return deploy, random_caffemodel(deploy, tmp_path / "a.caffemodel", seed=1)


def _rows_for(result, layer):
    return [row for row in result.rows if row[0] == layer]


def test_identical_files_exit_zero(tmp_path, model, capsys):
    _, a = model
    b = shutil.copy(a, tmp_path / "b.caffemodel")
    assert main([str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "same bytes: 8 layers, 5 blobs" in out and out.strip().endswith("IDENTICAL")


def test_reader_matches_pycaffe_bit_for_bit(model):
    deploy, weights = model
    net = caffe.Net(str(deploy), str(weights), caffe.TEST)
    layers = read_caffemodel(weights)
    for name, params in net.params.items():
        for blob, param in zip(layers[name].blobs, params):
            assert blob.shape == param.data.shape
            assert blob.array().tobytes() == param.data.tobytes()


def test_one_bit_in_one_blob(tmp_path, model):
    deploy, a = model
    net = caffe.Net(str(deploy), str(a), caffe.TEST)
    bits = net.params["score_fr"][0].data.view(np.int32)
    bits.flat[5] ^= 1                      # the lowest mantissa bit of one weight
    net.save(str(tmp_path / "b.caffemodel"))
    result = compare_files(a, tmp_path / "b.caffemodel")
    assert not result.identical
    (changed,) = [row for row in result.rows if row[4] != "identical"]
    assert changed[:2] == ("score_fr", 0)
    assert changed[5] == f"1/{net.params['score_fr'][0].data.size}"
    assert changed[7] == 1                                     # one ULP
    assert 0 < changed[6] < 1e-6                               # max |Δ|
    assert all(row[4] == "identical" for row in _rows_for(result, "conv1"))


def test_any_flipped_bit_in_the_file_is_caught(tmp_path, model):
    _, a = model
    size = a.stat().st_size
    for n, byte in enumerate(range(0, size, max(1, size // 23))):
        b = flip_bit(a, tmp_path / f"flip{n}.caffemodel", byte, bit=n % 8)
        assert main([str(a), str(b)]) in (1, 2), f"bit {n % 8} of byte {byte} not caught"


def test_missing_and_extra_layers_and_shapes(tmp_path, model):
    _, a = model
    other = write_tiny_deploy(tmp_path / "other.prototxt", extra_layer=True, width=5)
    b = random_caffemodel(other, tmp_path / "b.caffemodel", seed=1)
    result = compare_files(a, b)
    assert not result.identical
    assert ("conv1b", "-", None, None, "extra in B", None, None, None) in result.rows
    shape_rows = [r for r in _rows_for(result, "conv1") if r[1] == 0]
    assert shape_rows[0][2:5] == ((4, 3, 3, 3), (5, 3, 3, 3), "shape differs")
    reverse = compare_files(b, a)
    assert ("conv1b", "-", None, None, "missing in B", None, None, None) in reverse.rows


def test_truncated_or_wrong_file_is_a_clear_error(tmp_path, model, capsys):
    deploy, a = model
    truncated = tmp_path / "cut.caffemodel"
    truncated.write_bytes(a.read_bytes()[:-7])
    with pytest.raises(CaffeFileError, match=r"cut\.caffemodel: the file is cut off at byte \d+: "
                       r"the layer .score. .*needs 7 more bytes"):
        read_caffemodel(truncated)
    assert main([str(a), str(truncated)]) == 2
    assert "cut.caffemodel" in capsys.readouterr().err
    with pytest.raises(CaffeFileError, match="deploy.prototxt: not a readable caffemodel"):
        compare_files(deploy, a, kind="caffemodel")


# --- compare.numeric: the element-by-element verdict every blob row rests on ---------------
def test_identical_arrays_and_what_cannot_be_compared():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    same = compare_arrays(a, a.copy())
    assert same.identical and same == ArrayDiff(count=12)
    assert same.first_index == -1
    assert compare_arrays(a, a.T.copy().T).identical          # any memory layout, flat order
    with pytest.raises(ValueError, match=r"cannot compare float32\[12\] with float64\[12\]"):
        compare_arrays(a, a.astype(np.float64))
    with pytest.raises(ValueError, match=r"cannot compare float64\[12\] with float32\[12\]"):
        compare_arrays(a.astype(np.float64), a)
    with pytest.raises(ValueError, match=r"cannot compare float32\[12\] with float32\[11\]"):
        compare_arrays(a, a.ravel()[:11])
    with pytest.raises(ValueError, match=r"cannot compare float32\[1\] with float32\[12\]"):
        compare_arrays(a.ravel()[:1], a)           # never broadcast against the other


def test_signed_zeros_and_nan_payloads_differ_in_bits_only():
    zero = compare_arrays(np.array([1.0, 0.0], np.float32), np.array([1.0, -0.0], np.float32))
    assert zero == ArrayDiff(count=2, differing=1, first_index=1)   # 0 |Δ|, 0 ULP
    quiet = np.array([np.nan], np.float32)
    other = quiet.view(np.int32).copy()
    other[0] += 1                                                  # another NaN payload
    nan = compare_arrays(quiet, other.view(np.float32))
    assert nan == ArrayDiff(count=1, differing=1, first_index=0)


def test_nan_or_infinity_against_another_value_is_a_nan_mismatch_not_a_distance():
    a = np.array([np.nan, np.inf, np.inf, 2.0, -np.inf, 5.0], np.float32)
    b = np.array([1.0, 3.0, -np.inf, np.nan, -np.inf, 5.5], np.float32)
    found = compare_arrays(a, b)
    assert (found.differing, found.nan_mismatch, found.first_index) == (5, 4, 0)
    assert (found.max_abs, found.max_ulp) == (0.5, 1 << 20)         # the finite pair alone
    assert compare_arrays(a[:1], b[:1]).nan_mismatch == 1
    assert compare_arrays(b[3:4], a[3:4]).nan_mismatch == 1


def test_ulp_distance_counts_representable_values_across_zero_and_at_the_extremes():
    one = np.float32(1.0)
    next_one = np.nextafter(one, np.float32(2.0))
    assert ulp_distance(np.array([one]), np.array([next_one])).tolist() == [1]
    assert ulp_distance(np.array([-next_one]), np.array([-one])).tolist() == [1]
    tiny = np.array([np.float32(1e-45)])                          # the least subnormal
    assert ulp_distance(tiny, -tiny).tolist() == [2]
    assert ulp_distance(np.array([one]), np.array([np.float32(2.0)])).tolist() == [1 << 23]
    assert ulp_distance(np.array([1.0]), np.array([2.0])).tolist() == [1 << 52]
    assert ulp_distance(np.array([1.0], np.float16), np.array([2.0], np.float16)).tolist() \
        == [1 << 10]
    big = np.finfo(np.float64).max                                # the gap needs all 64 bits
    assert ulp_distance(np.array([-big]), np.array([big])).tolist() == [2 * 0x7FEFFFFFFFFFFFFF]
    assert ordered_bits(np.array([0.0, -0.0, -1.0], np.float32)).tolist() == \
        [0, 0, -0x3F800000]
    found = compare_arrays(np.array([-1.0, 3.0], np.float32), np.array([-2.0, 3.0], np.float32))
    assert (found.max_abs, found.max_ulp, found.first_index) == (1.0, 1 << 23, 0)


def test_integers_get_the_largest_absolute_difference_and_no_ulp():
    a = np.array([5, -7, 200, 0], np.int32)
    b = np.array([5, 2, 195, 0], np.int32)
    assert compare_arrays(a, b) == ArrayDiff(count=4, differing=2, first_index=1, max_abs=9.0)
    u = compare_arrays(np.array([0, 255], np.uint8), np.array([255, 255], np.uint8))
    assert (u.max_abs, u.max_ulp, u.differing) == (255.0, 0, 1)
    flags = compare_arrays(np.array([True, False]), np.array([True, True]))
    assert (flags.max_abs, flags.max_ulp, flags.differing) == (1.0, 0, 1)


def test_chunks_add_up_to_the_whole_array(monkeypatch):
    monkeypatch.setattr(numeric, "CHUNK", 4)
    a = np.zeros(10, np.float32)
    b = a.copy()
    b[6], b[9] = 0.5, 1.0                                          # the second and third chunk
    assert compare_arrays(a, b) == ArrayDiff(count=10, differing=2, first_index=6,
                                             max_abs=1.0, max_ulp=0x3F800000)
    b[1] = 4.0                                                     # the first chunk too
    b[2] = np.nan
    found = compare_arrays(a, b)
    assert (found.differing, found.first_index, found.max_abs, found.nan_mismatch) == \
        (4, 1, 4.0, 1)
    assert found.max_ulp == 0x40800000
    b[0] = 2.0                                                     # at the very first index
    assert compare_arrays(a, b).first_index == 0
    ints = np.zeros(10, np.int64)
    other = ints.copy()
    other[2], other[7] = 9, 3
    assert compare_arrays(ints, other).max_abs == 9.0
    other[2], other[7] = 3, 9
    assert compare_arrays(ints, other).max_abs == 9.0


# --- compare.caffemodel on hand-made NetParameters: what decides the rows and the notes ----
def _blob(values, *, double=False, shape=None):
    blob = caffe_pb2.BlobProto()
    blob.shape.dim.extend(shape or [len(values)])
    (blob.double_data if double else blob.data).extend(values)
    return blob


def _layer(name, *blobs, kind="Convolution", **fields):
    layer = caffe_pb2.LayerParameter(name=name, type=kind, **fields)
    layer.blobs.extend(blobs)
    return layer


def _net_file(path, *layers, name="net", v1=()):
    net = caffe_pb2.NetParameter(name=name)
    net.layer.extend(layers)
    net.layers.extend(v1)
    path.write_bytes(net.SerializeToString())
    return path


def _varint(n):
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def test_a_layer_definition_differs_in_words(tmp_path):
    a = _net_file(tmp_path / "a", _layer("conv", _blob([1.0]),
                                         convolution_param={"num_output": 4}))
    b = _net_file(tmp_path / "b", _layer("conv", _blob([1.0]),
                                         convolution_param={"num_output": 5}))
    result = compare_files(a, b, kind="caffemodel")
    assert not result.identical
    assert result.rows == [
        ("conv", "-", None, None, "definition differs: convolution_param.num_output: 4 vs 5",
         None, None, None),
        ("conv", 0, (1,), (1,), "identical", 0, 0.0, 0)]
    assert result.notes == []
    assert definition_difference(read_caffemodel(a)["conv"], read_caffemodel(a)["conv"]) \
        is None
    c = _net_file(tmp_path / "c", _layer("conv", _blob([1.0]), kind="Deconvolution",
                                         convolution_param={"num_output": 5}))
    assert first_definition_difference(read_caffemodel(a)["conv"], read_caffemodel(c)["conv"]) \
        == ("type", "'Convolution'", "'Deconvolution'")       # the first of two, in order


def test_files_of_one_size_and_time_are_still_read_to_the_last_byte(tmp_path, model):
    _, a = model
    b = flip_bit(a, tmp_path / "b.caffemodel", a.stat().st_size - 3)
    stamp = a.stat().st_mtime_ns
    os.utime(a, ns=(stamp, stamp))
    os.utime(b, ns=(stamp, stamp))
    assert not compare_files(a, b).identical


def test_the_same_fields_in_another_order_and_the_v1_format_are_named(tmp_path):
    def raw_net(path, *parts):          # one layer whose fields are stored in this order
        body = b"".join(p.SerializeToString() for p in parts)
        path.write_bytes(b"\xa2\x06" + _varint(len(body)) + body)   # NetParameter.layer
        return path
    name, kind = caffe_pb2.LayerParameter(name="relu"), caffe_pb2.LayerParameter(type="ReLU")
    a, b = raw_net(tmp_path / "a", name, kind), raw_net(tmp_path / "b", kind, name)
    layer_a, layer_b = read_caffemodel(a)["relu"], read_caffemodel(b)["relu"]
    assert first_definition_difference(layer_a, layer_b) == ("field order",
                                                             "stored in one order", "in another")
    assert definition_difference(layer_a, layer_b) == "same fields, stored in a different order"
    v1 = caffe_pb2.V1LayerParameter(name="relu", type=caffe_pb2.V1LayerParameter.RELU)
    old = read_caffemodel(_net_file(tmp_path / "old", v1=[v1]))["relu"]
    assert first_definition_difference(old, layer_a) == ("format", "V1 'layers'", "layer")
    assert first_definition_difference(layer_a, old) == ("format", "layer", "V1 'layers'")
    assert definition_difference(old, layer_a) == \
        "one layer is in the V1 ('layers') format, the other is not"
    other = caffe_pb2.V1LayerParameter(name="relu", type=caffe_pb2.V1LayerParameter.SIGMOID)
    older = read_caffemodel(_net_file(tmp_path / "older", v1=[other]))["relu"]
    assert definition_difference(old, older) == "type: RELU vs SIGMOID"   # enums by name
    assert compare_files(tmp_path / "old", tmp_path / "older", kind="caffemodel").rows[0][4] \
        == "definition differs: type: RELU vs SIGMOID"


def test_blob_counts_storage_and_nan_are_told_apart(tmp_path):
    a = _net_file(tmp_path / "a", _layer("w", _blob([1.0, 2.0]), _blob([3.0])),
                  _layer("s", _blob([1.0, 2.0])), _layer("n", _blob([1.0, 2.0, 3.0])))
    b = _net_file(tmp_path / "b", _layer("w", _blob([1.0, 2.0])),
                  _layer("s", _blob([1.0, 2.0], double=True)),
                  _layer("n", _blob([1.0, float("nan"), 3.5])))
    result = compare_files(a, b, kind="caffemodel")
    assert not result.identical
    assert result.rows == [
        ("w", "-", None, None, "2 blobs vs 1", None, None, None),
        ("w", 0, (2,), (2,), "identical", 0, 0.0, 0),
        ("s", 0, (2,), (2,), "storage differs", None, None, None),
        ("n", 0, (3,), (3,), "differs (1 NaN/inf)", "2/3", 0.5, 1 << 21)]
    empty = _net_file(tmp_path / "empty", _layer("w", _blob([], shape=[2]), _blob([3.0])),
                      _layer("s", _blob([1.0, 2.0])), _layer("n", _blob([1.0, 2.0, 3.0])))
    assert compare_files(a, empty, kind="caffemodel").rows[0] == \
        ("w", 0, (2,), (2,), "storage differs", None, None, None)
    reshaped = _net_file(tmp_path / "reshaped",
                         _layer("w", _blob([1.0, 2.0], shape=[1, 2]), _blob([3.0])),
                         _layer("s", _blob([1.0, 2.0])), _layer("n", _blob([1.0, 2.0, 3.0])))
    rows = compare_files(a, reshaped, kind="caffemodel").rows
    assert rows[0] == ("w", 0, (2,), (1, 2), "shape differs", None, None, None)
    assert rows[1] == ("w", 1, (1,), (1,), "identical", 0, 0.0, 0)


def test_what_differs_outside_the_blobs_is_noted(tmp_path):
    layers = (_layer("x", _blob([1.0])), _layer("y", _blob([2.0])))
    a = _net_file(tmp_path / "a", *layers)
    renamed = compare_files(a, _net_file(tmp_path / "b", *layers, name="other"),
                            kind="caffemodel")
    assert not renamed.identical
    assert [row[4] for row in renamed.rows] == ["identical", "identical"]
    assert renamed.notes == ["every layer and blob is equal; the files differ outside the "
                             "layers (net name or other NetParameter fields)"]
    reordered = compare_files(a, _net_file(tmp_path / "c", *layers[::-1]), kind="caffemodel")
    assert not reordered.identical
    assert reordered.notes == ["the layers are stored in a different order"]
    backwards = compare_files(tmp_path / "c", a, kind="caffemodel")
    assert backwards.notes == ["the layers are stored in a different order"]
    fewer = compare_files(a, _net_file(tmp_path / "d", layers[0]), kind="caffemodel")
    assert fewer.rows[-1] == ("y", "-", None, None, "missing in B", None, None, None)
    assert fewer.notes == []
    first_gone = compare_files(a, _net_file(tmp_path / "f", layers[1]), kind="caffemodel")
    assert first_gone.rows == [("x", "-", None, None, "missing in B", None, None, None),
                               ("y", 0, (1,), (1,), "identical", 0, 0.0, 0)]
    same = compare_files(a, _net_file(tmp_path / "e", *layers), kind="caffemodel")
    assert same.identical and same.rows == []
    assert same.notes == ["same bytes: 2 layers, 2 blobs"]


def test_each_kind_of_difference_alone_is_no_equal_layers_note(tmp_path):
    base = (_layer("w", _blob([1.0, 2.0]), _blob([3.0])), _layer("x", _blob([4.0])))
    a = _net_file(tmp_path / "a", *base)
    variants = {
        "fewer blobs": (_layer("w", _blob([1.0, 2.0])), base[1]),
        "doubles": (_layer("w", _blob([1.0, 2.0], double=True), _blob([3.0])), base[1]),
        "reshaped": (_layer("w", _blob([1.0, 2.0], shape=[1, 2]), _blob([3.0])), base[1]),
        "empty": (_layer("w", _blob([], shape=[2]), _blob([3.0])), base[1]),
        "extra layer": (*base, _layer("z", _blob([5.0]))),
    }
    variants["second blob"] = (_layer("w", _blob([1.0, 2.0]), _blob([3.5])), base[1])
    for name, layers in variants.items():
        b = _net_file(tmp_path / name, *layers)
        for first, second in ((a, b), (b, a)):
            result = compare_files(first, second, kind="caffemodel")
            assert not result.identical and result.notes == [], (name, result.notes)
            assert [row for row in result.rows if row[4] != "identical"], name
    second = compare_files(a, tmp_path / "second blob", kind="caffemodel")
    assert [row[:5] for row in second.rows] == [("w", 0, (2,), (2,), "identical"),
                                                ("w", 1, (1,), (1,), "differs"),
                                                ("x", 0, (1,), (1,), "identical")]
