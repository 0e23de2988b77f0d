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
