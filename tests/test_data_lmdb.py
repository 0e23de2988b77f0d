"""Every layer reads a packed LMDB and gives the same tops as from the folders, byte for
byte, through pycaffe."""

import pytest

from bench.data_layers import data_layer_net
from data.lmdb_pack import pack
from data.registry import layer_params, module_and_class, top_names
from data.synthetic import make_dataset

CASES = [("voc", "seg11valid", "voc"), ("sbdd", "train", "voc"), ("nyud", "test", "nyud"),
         ("siftflow", "trainval", "siftflow"), ("pascalcontext", "val", "pascalcontext")]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    for writer in ("voc", "nyud", "siftflow", "pascalcontext"):
        make_dataset(writer, root, n_train=3, n_val=3, size=(28, 36), size_jitter=6, seed=9)
    return root


def tops_of(name, params, folder, steps):
    folder.mkdir()
    module, layer = module_and_class(name)
    names = top_names(name, params)
    net = data_layer_net(folder / "n.prototxt", module, layer, repr(params), names)
    out = []
    for _ in range(steps):
        net.forward()
        out.append({t: net.blobs[t].data.copy() for t in names})
    return out


@pytest.mark.parametrize("name,split,writer", CASES)
def test_lmdb_tops_equal_folder_tops(root, tmp_path, name, split, writer):
    out = pack(name, root, split, tmp_path / "lmdb", progress=False)
    plain = tops_of(name, layer_params(name, root, split), tmp_path / "a", 4)
    mode = "process" if name == "sbdd" else "thread"  # a forked worker reopens the LMDB
    packed = tops_of(name, layer_params(name, root, split, lmdb=str(out), prefetch=mode),
                     tmp_path / "b", 4)
    for a, b in zip(plain, packed):
        for top in a:
            assert a[top].shape == b[top].shape
            assert a[top].tobytes() == b[top].tobytes(), top


def test_lmdb_reads_no_folder(root, tmp_path):
    out = pack("voc", root, "seg11valid", tmp_path / "lmdb", progress=False)
    params = layer_params("voc", tmp_path / "nowhere", "seg11valid", lmdb=str(out))
    assert len(tops_of("voc", params, tmp_path / "n", 2)) == 2


def test_missing_lmdb_and_missing_entry_are_named(root, tmp_path):
    from seg_io import DataError

    params = layer_params("voc", root, "seg11valid", lmdb=str(tmp_path / "none"))
    with pytest.raises(DataError, match=rf"{tmp_path / 'none'}: no LMDB here"):
        tops_of("voc", params, tmp_path / "a", 1)
    out = pack("voc", root, "seg11valid", tmp_path / "lmdb", progress=False)
    params = layer_params("voc", root, "train", lmdb=str(out))  # a split not packed
    with pytest.raises(DataError, match=r"split list .*ImageSets/Segmentation/train.txt\] not"):
        tops_of("voc", params, tmp_path / "b", 1)


def test_pack_refuses_bad_examples(root, tmp_path):
    from seg_io import DataError

    copy = tmp_path / "copy"
    make_dataset("siftflow", copy, n_train=2, n_val=1, size=(24, 24), seed=1)
    first = (copy / "sift-flow/trainval.txt").read_text().split()[0]
    category = "spatial_envelope_256x256_static_8outdoorcategories"
    image = copy / f"sift-flow/Images/{category}/{first}.jpg"
    image.write_bytes(b"broken")
    with pytest.raises(DataError, match=f"{first}.jpg is not a readable image"):
        pack("siftflow", copy, "trainval", tmp_path / "lmdb", progress=False)
