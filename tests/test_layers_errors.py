"""Bad input gives one clear Python exception naming the file, before Caffe sees it."""

import shutil

import numpy as np
import pytest
from PIL import Image
from seg_io import DataError

from bench.data_layers import data_layer_net
from core.catalog import DATASETS
from data.synthetic import make_dataset

VOC_MEAN = DATASETS["voc"].means["data"]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    root = tmp_path_factory.mktemp("pristine")
    make_dataset("voc", root, n_train=3, n_val=2, size=(32, 40), seed=21)
    make_dataset("nyud", root, n_train=2, n_val=1, size=(32, 40), seed=21)
    make_dataset("siftflow", root, n_train=2, n_val=1, size=(32, 40), seed=21)
    return root


@pytest.fixture
def root(pristine, tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(pristine, copy)
    return copy


def voc_net(root, tmp_path, tops=("data", "label"), **extra):
    params = {"voc_dir": f"{root}/pascal/VOC2011", "seed": 1337, "split": "seg11valid",
              "mean": VOC_MEAN, **extra}
    return data_layer_net(tmp_path / "n.prototxt", "voc_layers", "VOCSegDataLayer",
                          repr(params), list(tops))


def first_val(root):
    voc = root / "pascal" / "VOC2011"
    index = (voc / "ImageSets/Segmentation/seg11valid.txt").read_text().split()[0]
    return voc / "JPEGImages" / f"{index}.jpg", voc / "SegmentationClass" / f"{index}.png"


def test_missing_image(root, tmp_path):
    image, _ = first_val(root)
    image.unlink()
    with pytest.raises(DataError, match=rf"{image}: file not found"):
        voc_net(root, tmp_path)


def test_corrupt_jpeg(root, tmp_path):
    image, _ = first_val(root)
    image.write_bytes(image.read_bytes()[: len(image.read_bytes()) // 3])
    with pytest.raises(DataError, match=rf"image {image} is not a readable image"):
        voc_net(root, tmp_path)


def test_label_image_size_mismatch(root, tmp_path):
    image, label = first_val(root)
    Image.open(label).crop((0, 0, 30, 20)).save(label)
    with pytest.raises(DataError, match=rf"label {label} is 20×30 but data {image} is 32×40"):
        voc_net(root, tmp_path)


def test_label_values_out_of_range(root, tmp_path):
    _, label = first_val(root)
    values = np.array(Image.open(label))
    values[0, 0] = 37
    out = Image.fromarray(values, mode="L")
    out.save(label)
    with pytest.raises(DataError, match=rf"label {label} has values 37 that are neither a "
                                        r"class nor void"):
        voc_net(root, tmp_path)


def test_nyud_label_out_of_range_is_caught_before_the_shift(root, tmp_path):
    from scipy.io import loadmat, savemat

    nyud = root / "nyud"
    index = (nyud / "test.txt").read_text().split()[0]
    mat = nyud / "segmentation" / f"img_{index}.mat"
    raw = loadmat(mat)["segmentation"]
    raw[0, 0] = 41  # would become class 40, which does not exist
    savemat(mat, {"segmentation": raw})
    params = {"tops": ["color", "label"], "seed": 1, "nyud_dir": str(nyud), "split": "test"}
    with pytest.raises(DataError, match=rf"label {mat} has values 41"):
        data_layer_net(tmp_path / "n.prototxt", "nyud_layers", "NYUDSegDataLayer",
                       repr(params), ["color", "label"])


def test_empty_split_list(root, tmp_path):
    split = root / "pascal/VOC2011/ImageSets/Segmentation/seg11valid.txt"
    split.write_text("")
    with pytest.raises(DataError, match=rf"split list {split} is empty"):
        voc_net(root, tmp_path)


def test_missing_split_list(root, tmp_path):
    with pytest.raises(DataError, match=r"split list .*ImageSets/Segmentation/nope.txt not found"):
        voc_net(root, tmp_path, split="nope")


@pytest.mark.parametrize("tops", [("data",), ("data", "label", "extra")])
def test_wrong_number_of_tops(root, tmp_path, tops):
    with pytest.raises(DataError, match=rf"VOCSegDataLayer gives 2 tops \['data', 'label'\], "
                                        rf"but the net declares {len(tops)}"):
        voc_net(root, tmp_path, tops=tops)


def test_siftflow_wants_three_tops(root, tmp_path):
    params = {"siftflow_dir": str(root / "sift-flow"), "seed": 1, "split": "test"}
    with pytest.raises(DataError, match=r"gives 3 tops \['data', 'sem', 'geo'\]"):
        data_layer_net(tmp_path / "n.prototxt", "siftflow_layers", "SIFTFlowSegDataLayer",
                       repr(params), ["data", "sem"])


def test_param_str_typos_and_code_are_refused(root, tmp_path):
    with pytest.raises(DataError, match=r"unknown key\(s\) \['prefech'\]"):
        voc_net(root, tmp_path, prefech=False)
    with pytest.raises(DataError, match="not a Python literal"):
        data_layer_net(tmp_path / "n.prototxt", "voc_layers", "VOCSegDataLayer",
                       "__import__('os').getcwd()", ["data", "label"])


def test_nyud_unknown_top_name(root, tmp_path):
    params = {"tops": ["color", "normals"], "seed": 1, "nyud_dir": str(root / "nyud"),
              "split": "test"}
    with pytest.raises(DataError, match=r"tops \['color', 'normals'\] must be distinct names"):
        data_layer_net(tmp_path / "n.prototxt", "nyud_layers", "NYUDSegDataLayer",
                       repr(params), ["color", "normals"])


def test_error_in_a_prefetched_example_surfaces_at_its_forward(root, tmp_path):
    voc = root / "pascal" / "VOC2011"
    second = (voc / "ImageSets/Segmentation/seg11valid.txt").read_text().split()[1]
    (voc / "JPEGImages" / f"{second}.jpg").write_bytes(b"not a jpeg")
    for mode in ("thread", "process"):
        net = voc_net(root, tmp_path, prefetch=mode)
        net.forward()  # the first image is fine; the second is decoded in the background
        with pytest.raises(DataError, match=rf"{second}.jpg is not a readable image"):
            net.forward()


def test_a_bottom_is_refused(root, tmp_path):
    """A data layer reads files, not blobs (make mutate survivor: `len(bottom) < 0`)."""
    import caffe
    from caffe import layers as L

    params = {"voc_dir": f"{root}/pascal/VOC2011", "seed": 1337, "split": "seg11valid",
              "mean": VOC_MEAN}
    n = caffe.NetSpec()
    n.given = L.Input(shape=[dict(dim=[1, 1, 2, 2])])
    n.data, n.label = L.Python(n.given, module="voc_layers", layer="VOCSegDataLayer",
                               param_str=repr(params), ntop=2)
    prototxt = tmp_path / "n.prototxt"
    prototxt.write_text(str(n.to_proto()))
    with pytest.raises(DataError, match="VOCSegDataLayer takes no bottoms, the net gives 1"):
        caffe.Net(str(prototxt), caffe.TEST)


def test_image_and_mat_readers_say_what_is_wrong(tmp_path):
    """seg_io's readers (make mutate survivors: the RGB check as `>` or `<`, the .mat
    reader's exception handling and the variables it lists)."""
    from scipy.io import savemat
    from seg_io import FileSource, read_mat, read_rgb

    source = FileSource({"d": tmp_path})
    Image.fromarray(np.zeros((3, 4), np.uint8)).save(tmp_path / "grey.jpg")
    Image.fromarray(np.zeros((3, 4, 4), np.uint8)).save(tmp_path / "rgba.png")
    Image.fromarray(np.zeros((3, 4, 3), np.uint8)).save(tmp_path / "rgb.png")
    for name, mode in (("grey.jpg", "L"), ("rgba.png", "RGBA")):
        with pytest.raises(DataError, match=rf"{name} is {mode}, expected RGB"):
            read_rgb(source, ("d", name))
    assert read_rgb(source, ("d", "rgb.png")).shape == (3, 4, 3)
    savemat(tmp_path / "other.mat", {"S": np.zeros((2, 2)), "T": np.ones(1)})
    with pytest.raises(DataError,
                       match=r"other\.mat has no variable 'GTcls' \(found \['S', 'T'\]\)"):
        read_mat(source, ("d", "other.mat"), "GTcls")
    (tmp_path / "torn.mat").write_bytes(b"MATLAB 5.0 MAT-file" + bytes(20))
    with pytest.raises(DataError, match=r"torn\.mat is not a readable \.mat file"):
        read_mat(source, ("d", "torn.mat"), "S")
    with pytest.raises(DataError, match=r"absent\.mat: file not found$"):
        read_mat(source, ("d", "absent.mat"), "S")


def test_stray_label_values_are_listed_eight_at_most_with_the_allowed_runs():
    from seg_io import check_label_values

    allowed = np.array([*range(21), 255])
    strays = np.array([[0, 30, 31, 32, 33, 34, 35, 36, 37, 38, 255]], np.uint8)
    with pytest.raises(DataError) as error:
        check_label_values(strays, allowed, "x.png")
    assert str(error.value) == ("label x.png has values 30, 31, 32, 33, 34, 35, 36, 37 that "
                                "are neither a class nor void (allowed: 0..20, 255)")
    check_label_values(np.array([[0, 20, 255]], np.uint8), allowed, "x.png")
