"""compare two nets on the same inputs: every blob of the forward pass, bitwise then max |Δ|."""

import caffe
import numpy as np
import pytest
from PIL import Image

from compare.cli import main
from compare.errors import CompareError
from compare.forward import compare_forward, read_input
from core.caffe_files import CaffeFileError
from testkit.tiny_nets import random_caffemodel, write_tiny_deploy


@pytest.fixture
def setup(tmp_path):
    deploy = write_tiny_deploy(tmp_path / "deploy.prototxt")
    weights = random_caffemodel(deploy, tmp_path / "a.caffemodel", seed=3)
    rng = np.random.default_rng(0)
    image = tmp_path / "image.png"
    Image.fromarray(rng.integers(0, 256, (18, 22, 3), dtype=np.uint8)).save(image)
    return deploy, weights, image


def _status(result):
    return {row[1]: row[4] for row in result.rows}


def test_same_net_and_weights_are_identical(tmp_path, setup, capsys):
    deploy, weights, image = setup
    array = tmp_path / "input.npy"
    np.save(array, np.random.default_rng(1).normal(size=(3, 14, 16)).astype(np.float32))
    argv = ["--net-a", str(deploy), "--weights-a", str(weights), "--weights-b", str(weights),
            "--input", str(image), str(array)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.strip().endswith("IDENTICAL")
    result = compare_forward(deploy, weights, deploy, weights, [image, array])
    assert {row[0] for row in result.rows} == {"image.png", "input.npy"}
    assert set(_status(result)) >= {"data", "conv1", "pool1", "score_fr", "upscore", "score"}
    assert ("image.png", "score", (1, 3, 18, 22), (1, 3, 18, 22), "identical", 0, 0.0, 0) \
        in result.rows


def test_one_flipped_weight_bit_shows_where_it_enters(tmp_path, setup):
    deploy, weights, image = setup
    net = caffe.Net(str(deploy), str(weights), caffe.TEST)
    net.params["score_fr"][0].data.view(np.int32).flat[0] ^= 1 << 22  # a high mantissa bit
    net.save(str(tmp_path / "b.caffemodel"))
    result = compare_forward(deploy, weights, deploy, tmp_path / "b.caffemodel", [image])
    assert not result.identical
    status = _status(result)
    assert status["conv1"] == "identical" and status["pool1"] == "identical"
    assert status["score_fr"] == "differs" and status["score"] == "differs"
    score_row = next(row for row in result.rows if row[1] == "score")
    assert score_row[6] > 0 and score_row[7] > 0


def test_nets_with_different_blobs(tmp_path, setup):
    deploy, weights, image = setup
    other = write_tiny_deploy(tmp_path / "other.prototxt", extra_layer=True)
    other_weights = random_caffemodel(other, tmp_path / "b.caffemodel", seed=3)
    result = compare_forward(deploy, weights, other, other_weights, [image])
    assert not result.identical
    assert _status(result)["conv1b"] == "extra in B"
    reverse = compare_forward(other, other_weights, deploy, weights, [image])
    assert _status(reverse)["conv1b"] == "missing in B"
    assert _status(reverse)["score"] == "differs"        # the blobs after it are compared


def test_bad_inputs_are_clear_errors_not_aborts(tmp_path, setup, capsys):
    deploy, weights, image = setup
    grey = tmp_path / "grey.png"
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(grey)
    with pytest.raises(CompareError, match=r"grey\.png: image mode L, expected an RGB image"):
        compare_forward(deploy, weights, deploy, weights, [grey])
    wide = write_tiny_deploy(tmp_path / "wide.prototxt", width=6)
    wide_weights = random_caffemodel(wide, tmp_path / "wide.caffemodel")
    # Caffe itself would abort the process here (CHECK in CopyTrainedLayersFrom)
    with pytest.raises(CaffeFileError, match=r"wide\.caffemodel: layer conv1 blob 0 has shape "
                                         r"\(6, 3, 3, 3\), .*deploy\.prototxt expects "
                                         r"\(4, 3, 3, 3\)"):
        compare_forward(deploy, weights, deploy, wide_weights, [image])
    four = tmp_path / "four.npy"
    np.save(four, np.zeros((4, 8, 8), dtype=np.float32))
    assert main(["--net-a", str(deploy), "--weights-a", str(weights), "--input", str(four)]) == 2
    assert "four.npy: input 'data' of net A is 1×3×20×24" in capsys.readouterr().err


DUMMY_NET = '''layer { name: "data" type: "DummyData" top: "data"
  dummy_data_param { shape { dim: 1 dim: 2 dim: 3 dim: 4 }
                     data_filler { type: "constant" value: %s } } }
layer { name: "relu" type: "ReLU" bottom: "data" top: "out" }
'''


def test_inputs_by_name_by_file_kind_and_their_batch(tmp_path, setup):
    deploy, weights, image = setup
    rng = np.random.default_rng(2)
    named = tmp_path / "named.npz"
    np.savez(named, data=rng.normal(size=(2, 3, 10, 12)).astype(np.float32))
    result = compare_forward(deploy, weights, deploy, weights, [named])
    assert result.identical
    assert ("named.npz", "score", (2, 3, 10, 12), (2, 3, 10, 12), "identical", 0, 0.0, 0) \
        in result.rows
    rgb = np.asarray(Image.open(image))
    preprocessed = read_input(image, (1.0, 2.0, 3.0))[None]
    assert preprocessed.dtype == np.float32 and preprocessed.shape == (3, 18, 22)
    assert preprocessed[0, 4, 5] == np.float32(rgb[4, 5, 2]) - 1.0      # BGR minus the mean
    assert read_input(named, (0.0,)).keys() == {"data"}
    Image.open(image).save(tmp_path / "image.jpg")      # the release's demo is a JPEG
    assert read_input(tmp_path / "image.jpg", (0.0, 0.0, 0.0))[None].shape == (3, 18, 22)
    with pytest.raises(CompareError, match=r"absent\.npy: no such input file"):
        read_input(tmp_path / "absent.npy", (0.0,))
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, image=np.zeros((3, 8, 8), np.float32))
    with pytest.raises(CompareError, match=r"wrong\.npz: net A has no input blob image; its "
                                           r"inputs: \['data'\]"):
        compare_forward(deploy, weights, deploy, weights, [wrong])
    for shape, given in (((1, 2, 8, 8), "1×2×8×8"), ((8, 8), "8×8"), ((1, 3), "1×3")):
        array = tmp_path / "array.npy"
        np.save(array, np.zeros(shape, np.float32))
        with pytest.raises(CompareError, match=rf"array\.npy: input 'data' of net A is "
                                               rf"1×3×20×24, the file gives {given}$"):
            compare_forward(deploy, weights, deploy, weights, [array])
    with pytest.raises(CompareError, match="the nets take inputs: give at least one --input"):
        compare_forward(deploy, weights, deploy, weights, [])


def test_nets_fed_by_their_own_data_layers_need_no_input(tmp_path):
    write_tiny_deploy(tmp_path / "deploy.prototxt")
    one = tmp_path / "one.prototxt"
    one.write_text(DUMMY_NET % "1.5")
    two = tmp_path / "two.prototxt"
    two.write_text(DUMMY_NET % "-1.5")
    same = compare_forward(one, None, one, None, [])
    assert same.identical
    assert same.rows == [("(data layers)", "data", (1, 2, 3, 4), (1, 2, 3, 4), "identical", 0,
                          0.0, 0),
                         ("(data layers)", "out", (1, 2, 3, 4), (1, 2, 3, 4), "identical", 0,
                          0.0, 0)]
    other = compare_forward(one, None, two, None, [])
    assert not other.identical
    assert other.rows[0] == ("(data layers)", "data", (1, 2, 3, 4), (1, 2, 3, 4), "differs",
                             "24/24", 3.0, 0x3FC00000 + 0x3FC00000)
    assert other.rows[1][4:6] == ("differs", "24/24")     # ReLU: 1.5 against 0
    assert other.rows[1][6] == 1.5
    with pytest.raises(CompareError, match="the nets take inputs: give at least one"):
        compare_forward(one, None, tmp_path / "deploy.prototxt", None, [])   # B takes one
    longer = tmp_path / "longer.prototxt"           # only the shapes differ
    longer.write_text((DUMMY_NET % "1.5").replace("dim: 4", "dim: 5"))
    reshaped = compare_forward(one, None, longer, None, [])
    assert not reshaped.identical
    assert [row[4] for row in reshaped.rows] == ["shape differs", "shape differs"]
    bare = tmp_path / "bare.prototxt"               # the data layer alone: no "out"
    bare.write_text(DUMMY_NET.split("layer { name: \"relu\"")[0] % "1.5")
    fewer = compare_forward(one, None, bare, None, [])
    assert not fewer.identical                      # though every blob both have is equal
    assert fewer.rows[1] == ("(data layers)", "out", (1, 2, 3, 4), None, "missing in B", None,
                             None, None)
    more = compare_forward(bare, None, one, None, [])
    assert not more.identical
    assert more.rows[1] == ("(data layers)", "out", None, (1, 2, 3, 4), "extra in B", None,
                            None, None)


def test_blobs_missing_in_one_net_or_of_another_shape(tmp_path, setup):
    deploy, weights, image = setup
    other = write_tiny_deploy(tmp_path / "other.prototxt", extra_layer=True)
    other_weights = random_caffemodel(other, tmp_path / "b.caffemodel", seed=3)
    result = compare_forward(other, other_weights, deploy, weights, [image])
    assert ("image.png", "conv1b", (1, 4, 18, 22), None, "missing in B", None, None, None) \
        in result.rows
    assert not result.identical
    wide = write_tiny_deploy(tmp_path / "wide.prototxt", width=6)
    wide_weights = random_caffemodel(wide, tmp_path / "wide.caffemodel", seed=3)
    result = compare_forward(deploy, weights, wide, wide_weights, [image])
    assert ("image.png", "conv1", (1, 4, 18, 22), (1, 6, 18, 22), "shape differs", None, None,
            None) in result.rows
    assert not result.identical
    assert [row[4] for row in result.rows if row[1] == "score"] == ["differs"]   # and on
    backwards = compare_forward(wide, wide_weights, deploy, weights, [image])
    assert ("image.png", "conv1", (1, 6, 18, 22), (1, 4, 18, 22), "shape differs", None,
            None, None) in backwards.rows
    # identical overall only when every input's every blob is: the differing one decides
    flipped = caffe.Net(str(deploy), str(weights), caffe.TEST)
    flipped.params["conv1"][0].data[...] += 1.0          # nothing changes on a zero input
    flipped.save(str(tmp_path / "flipped.caffemodel"))
    zeros = tmp_path / "zeros.npy"
    np.save(zeros, np.zeros((3, 18, 22), np.float32))
    mixed = compare_forward(deploy, weights, deploy, tmp_path / "flipped.caffemodel",
                            [image, zeros])
    assert not mixed.identical
    score = [row for row in mixed.rows if row[1] == "score"]
    assert [row[0] for row in score] == ["image.png", "zeros.npy"]
    assert score[0][4] == "differs" and score[1][4] == "identical"
    assert score[0][5].endswith(f"/{3 * 18 * 22}")


def test_a_vector_input_of_another_width_is_refused(tmp_path):
    net = tmp_path / "vector.prototxt"
    net.write_text('layer { name: "data" type: "Input" top: "data" '
                   'input_param { shape { dim: 1 dim: 3 } } }\n'
                   'layer { name: "relu" type: "ReLU" bottom: "data" top: "out" }\n')
    wide = tmp_path / "wide.npy"
    np.save(wide, np.ones((1, 5), np.float32))
    with pytest.raises(CompareError, match=r"wide\.npy: input 'data' of net A is 1×3, the "
                                           r"file gives 1×5$"):
        compare_forward(net, None, net, None, [wide])
    fits = tmp_path / "fits.npy"
    np.save(fits, np.array([[1.0, -2.0, 3.0]], np.float32))
    assert compare_forward(net, None, net, None, [fits]).identical


def test_an_array_file_of_objects_or_no_array_is_one_clear_error(tmp_path, setup, capsys):
    deploy, weights, _ = setup
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.savez(tmp_path / "objects.npz", data=np.array([{"a": 1}], dtype=object))
    (tmp_path / "text.npy").write_text("not numpy")
    for name in ("objects.npy", "objects.npz", "text.npy"):
        with pytest.raises(CompareError, match=rf"{name}: not a numeric NumPy array file"):
            read_input(tmp_path / name, (0.0,))
    assert main(["--net-a", str(deploy), "--weights-a", str(weights), "--input",
                 str(tmp_path / "objects.npy")]) == 2
    assert "objects.npy: not a numeric NumPy array file" in capsys.readouterr().err


def test_an_array_goes_to_the_first_input_and_must_match_its_axes(tmp_path):
    net = tmp_path / "two.prototxt"
    net.write_text('layer { name: "data" type: "Input" top: "data" '
                   'input_param { shape { dim: 1 dim: 3 } } }\n'
                   'layer { name: "aux" type: "Input" top: "aux" '
                   'input_param { shape { dim: 1 dim: 2 } } }\n')
    first = tmp_path / "first.npy"
    np.save(first, np.array([[1.0, 2.0, 3.0]], np.float32))
    result = compare_forward(net, None, net, None, [first])
    assert result.identical and result.rows[0][:3] == ("first.npy", "data", (1, 3))
    deeper = tmp_path / "deeper.npy"
    np.save(deeper, np.ones((1, 3, 2, 2), np.float32))
    with pytest.raises(CompareError, match=r"deeper\.npy: input 'data' of net A is 1×3, the "
                                           r"file gives 1×3×2×2$"):
        compare_forward(net, None, net, None, [deeper])
    line = tmp_path / "line.prototxt"
    line.write_text('layer { name: "data" type: "Input" top: "data" '
                    'input_param { shape { dim: 3 } } }\n')
    flat = tmp_path / "flat.npy"
    np.save(flat, np.array([1.0, 2.0, 3.0, 4.0], np.float32))   # one axis: any length
    result = compare_forward(line, None, line, None, [flat])
    assert result.identical and result.rows == [("flat.npy", "data", (4,), (4,), "identical",
                                                 0, 0.0, 0)]


def test_weights_holding_nan_are_refused_before_any_comparison(tmp_path, setup):
    deploy, weights, image = setup
    net = caffe.Net(str(deploy), str(weights), caffe.TEST)
    net.params["conv1"][0].data.flat[0] = np.nan
    net.save(str(tmp_path / "nan.caffemodel"))
    for a, b in ((tmp_path / "nan.caffemodel", weights), (weights, tmp_path / "nan.caffemodel")):
        with pytest.raises(CaffeFileError, match=r"nan\.caffemodel \(--weights-[ab]\): layers "
                                                 r"conv1 hold NaN"):
            compare_forward(deploy, a, deploy, b, [image])
