"""SBD .mat → palette PNG conversion."""

import numpy as np
import pytest
from PIL import Image
from scipy.io import loadmat, savemat

from core.palette import voc_palette
from data.convert_sbdd import ConvertError, convert
from data.synthetic import make_dataset


def test_pngs_hold_the_mat_labels_in_the_voc_palette(tmp_path):
    root = make_dataset("voc", tmp_path, n_train=3, n_val=1, size=(24, 32), seed=5)
    sbdd = root / "sbdd/dataset"
    assert convert(sbdd, progress=False) == 3
    for mat in sorted((sbdd / "cls").glob("*.mat")):
        png = Image.open(mat.with_suffix(".png"))
        assert png.mode == "P" and png.getpalette()[:768] == voc_palette()
        want = loadmat(mat)["GTcls"][0]["Segmentation"][0]
        np.testing.assert_array_equal(np.array(png), want)


def test_a_mat_that_is_not_sbd_is_named(tmp_path):
    (tmp_path / "cls").mkdir()
    savemat(tmp_path / "cls" / "x.mat", {"other": np.zeros((2, 2))})
    with pytest.raises(ConvertError, match=r"x.mat: not an SBD cls annotation"):
        convert(tmp_path, progress=False)
