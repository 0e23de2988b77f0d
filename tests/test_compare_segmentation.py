"""compare on segmentation images: index and VOC-coloured PNGs, pixel equality, agreement, IU."""

import numpy as np
import pytest
from PIL import Image

from compare.cli import compare_files, main
from compare.errors import CompareError
from compare.segmentation import agreement_and_mean_iu, load_label_map
from core.palette import colorize, palette_array, voc_palette


def _label_map(seed=0, shape=(30, 40)):
    rng = np.random.default_rng(seed)
    labels = rng.choice([0, 2, 15], size=shape).astype(np.uint8)
    labels[:3, :5] = 255                                   # a void border, like VOC's
    return labels


def _palette_png(path, labels):
    image = Image.fromarray(labels, mode="P")
    image.putpalette(voc_palette())
    image.save(path)
    return path


def _rgb_png(path, labels):
    Image.fromarray(colorize(labels)).save(path)
    return path


def test_voc_palette_facts():
    palette = palette_array()
    assert palette[2].tolist() == [0, 128, 0]          # bicycle
    assert palette[15].tolist() == [192, 128, 128]     # person
    assert palette[255].tolist() == [224, 224, 192]    # void
    assert len({tuple(c) for c in palette}) == 256


def test_index_and_rgb_encodings_of_one_map_are_identical(tmp_path, capsys):
    labels = _label_map()
    a = _palette_png(tmp_path / "a.png", labels)
    b = _rgb_png(tmp_path / "b.png", labels)
    assert load_label_map(b)[0].tolist() == labels.tolist()
    assert main([str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "only the encodings differ" in out and out.strip().endswith("IDENTICAL")


def test_one_pixel_differs(tmp_path):
    labels = _label_map()
    changed = labels.copy()
    changed[10, 7] = 2 if labels[10, 7] != 2 else 15
    a = _rgb_png(tmp_path / "a.png", labels)
    b = _rgb_png(tmp_path / "b.png", changed)
    result = compare_files(a, b)
    assert not result.identical
    assert ("differing pixels", f"1 of {labels.size}", "") in result.rows
    assert ("first differing pixel", f"row 10, col 7: {labels[10, 7]}",
            f"{changed[10, 7]}") in result.rows
    valid = labels.size - 15
    assert (("agreement (non-void)", f"{(valid - 1) / valid:.6f}", f"over {valid} pixels")
            in result.rows)


def test_agreement_and_mean_iu_on_a_known_case():
    a = np.array([[0, 0, 1, 1], [0, 0, 1, 255]])
    b = np.array([[0, 1, 1, 1], [0, 0, 1, 1]])
    agreement, mean_iu, pixels = agreement_and_mean_iu(a, b)
    assert pixels == 7
    assert agreement == pytest.approx(6 / 7)
    assert mean_iu == pytest.approx((3 / 4 + 3 / 4) / 2)


def test_sizes_differ(tmp_path):
    a = _palette_png(tmp_path / "a.png", _label_map(shape=(30, 40)))
    b = _palette_png(tmp_path / "b.png", _label_map(shape=(40, 30)))
    result = compare_files(a, b)
    assert not result.identical
    assert ("size (H×W)", (30, 40), (40, 30)) in result.rows
    reverse = compare_files(b, a)
    assert not reverse.identical and reverse.notes == ["sizes differ: no pixel comparison"]


def test_colour_outside_the_palette_is_a_clear_error(tmp_path, capsys):
    rgb = colorize(_label_map())
    rgb[4, 6] = (1, 2, 3)
    Image.fromarray(rgb).save(tmp_path / "bad.png")
    good = _rgb_png(tmp_path / "good.png", _label_map())
    with pytest.raises(CompareError, match=r"bad\.png: 1 pixels .* RGB \(1, 2, 3\) at row 4, "
                                       r"column 6"):
        compare_files(good, tmp_path / "bad.png")
    assert main([str(good), str(tmp_path / "bad.png")]) == 2
    assert "bad.png" in capsys.readouterr().err


def test_every_index_encoding_reads_as_the_same_map(tmp_path):
    labels = _label_map(seed=3, shape=(6, 9))
    Image.fromarray(labels, mode="L").save(tmp_path / "grey.png")
    Image.fromarray(labels.astype(np.uint16)).save(tmp_path / "sixteen.png")
    Image.fromarray(labels.astype(np.int32), mode="I").save(tmp_path / "wide.tif")
    rgba = np.dstack([colorize(labels), np.full(labels.shape, 255, np.uint8)])
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "opaque.png")
    seen = {}
    for name in ("grey.png", "sixteen.png", "wide.tif", "opaque.png"):
        indices, encoding = load_label_map(tmp_path / name)
        assert indices.dtype == np.int64 and indices.tolist() == labels.tolist(), name
        seen[name] = encoding
    assert seen == {"grey.png": "grey index PNG", "sixteen.png": "16-bit index image",
                    "wide.tif": "32-bit index image", "opaque.png": "VOC-coloured RGB"}
    assert load_label_map(_palette_png(tmp_path / "p.png", labels))[1] == "palette PNG"
    result = compare_files(tmp_path / "grey.png", tmp_path / "opaque.png")
    assert result.identical
    assert ("encoding", "grey index PNG", "VOC-coloured RGB") in result.rows
    assert result.notes == ["same class at every pixel; only the encodings differ"]
    assert compare_files(tmp_path / "opaque.png", tmp_path / "grey.png").notes == \
        ["same class at every pixel; only the encodings differ"]
    same = compare_files(tmp_path / "grey.png", tmp_path / "grey.png")
    assert same.identical and same.notes == []


def test_what_is_not_a_label_map_is_a_clear_error(tmp_path):
    labels = _label_map(shape=(4, 5))
    negative = labels.astype(np.int32) - 1
    negative[0, 0] = -3
    Image.fromarray(negative, mode="I").save(tmp_path / "negative.tif")
    with pytest.raises(CompareError, match=r"negative\.tif: negative class index -3"):
        load_label_map(tmp_path / "negative.tif")
    Image.fromarray(np.full((2, 2), -1, np.int32), mode="I").save(tmp_path / "minus.tif")
    with pytest.raises(CompareError, match=r"minus\.tif: negative class index -1"):
        load_label_map(tmp_path / "minus.tif")
    rgba = np.dstack([colorize(labels), np.full(labels.shape, 255, np.uint8)])
    rgba[3, 4, 3] = 254
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "clear.png")
    with pytest.raises(CompareError, match=r"clear\.png: RGBA with transparent pixels"):
        load_label_map(tmp_path / "clear.png")
    Image.fromarray(np.zeros((4, 5, 2), np.uint8), mode="LA").save(tmp_path / "la.png")
    with pytest.raises(CompareError, match=r"la\.png: image mode LA is neither an index nor"):
        load_label_map(tmp_path / "la.png")
    for mode in ("YCbCr", "CMYK", "LAB"):      # sorting after "RGB(A)" or before it
        Image.new(mode, (5, 4)).save(tmp_path / f"{mode}.tif")
        with pytest.raises(CompareError, match=rf"{mode}\.tif: image mode {mode} is neither"):
            load_label_map(tmp_path / f"{mode}.tif")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(CompareError, match=r"text\.png: cannot read as an image"):
        load_label_map(tmp_path / "text.png")
    rgb = colorize(labels)
    rgb[1, 2] = rgb[3, 0] = (9, 9, 9)
    Image.fromarray(rgb).save(tmp_path / "two.png")
    with pytest.raises(CompareError, match=r"two\.png: 2 pixels .* RGB \(9, 9, 9\) at row 1, "
                                       r"column 2"):
        load_label_map(tmp_path / "two.png")


def test_void_in_either_map_is_left_out_and_absent_classes_do_not_count():
    a = np.array([[0, 0, 1, 1, 3], [255, 0, 1, 4, 3]])
    b = np.array([[0, 1, 1, 255, 3], [0, 0, 1, 4, 1]])
    agreement, mean_iu, pixels = agreement_and_mean_iu(a, b)
    assert pixels == 8                                     # two pixels void, one in each
    assert agreement == pytest.approx(6 / 8)
    # classes 0 (2/3), 1 (2/4), 3 (1/2), 4 (1/1); 2 is in neither map
    assert mean_iu == pytest.approx((2 / 3 + 2 / 4 + 1 / 2 + 1) / 4)
    assert agreement_and_mean_iu(a, b, void=4)[2] == 9     # another void value
    nothing = agreement_and_mean_iu(np.full((2, 2), 255), np.zeros((2, 2), int))
    assert np.isnan(nothing[0]) and np.isnan(nothing[1]) and nothing[2] == 0
    assert agreement_and_mean_iu(np.array([2, 2]), np.array([2, 2])) == (1.0, 1.0, 2)


def test_a_differing_map_names_its_classes_and_first_pixel_in_reading_order(tmp_path):
    labels = np.zeros((3, 4), np.uint8)
    labels[2, 3] = 15
    changed = labels.copy()
    changed[1, 2], changed[2, 0], changed[2, 3] = 2, 2, 0      # B above A, and below
    result = compare_files(_palette_png(tmp_path / "a.png", labels),
                           _palette_png(tmp_path / "b.png", changed))
    assert not result.identical
    assert result.rows == [("encoding", "palette PNG", "palette PNG"),
                           ("size (H×W)", (3, 4), (3, 4)),
                           ("classes", "0, 15", "0, 2"),
                           ("differing pixels", "3 of 12", ""),
                           ("first differing pixel", "row 1, col 2: 0", "2"),
                           ("agreement (non-void)", f"{9 / 12:.6f}", "over 12 pixels"),
                           ("mean IU of B vs A", f"{(9 / 12 + 0 + 0) / 3:.6f}", "")]
    assert result.notes == []
