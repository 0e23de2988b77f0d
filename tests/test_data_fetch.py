"""Fetching against a local HTTP server (127.0.0.1) serving fixture archives: success,
resume after a cut connection, checksum refusal, offline message, safe unpacking, and a
whole dataset fetched, placed and split."""

import hashlib
import io
import shutil
import socket
import tarfile

import pytest

from core.download import DownloadError, fetch
from data.archives import ArchiveError, extract
from data.fetch import fetch_dataset
from data.sources import Download, Place
from data.synthetic import make_dataset
from testkit.http_files import serving


@pytest.fixture
def server():
    with serving() as handler:
        yield handler


def md5(data):
    return hashlib.md5(data).hexdigest()


def test_fetch_downloads_and_verifies(server, tmp_path):
    body = bytes(range(256)) * 4000
    server.files["/a.bin"] = body
    dest = fetch(f"{server.url}/a.bin", tmp_path / "a.bin", md5=md5(body), size=len(body),
                 progress=False)
    assert dest.read_bytes() == body
    assert not (tmp_path / "a.bin.part").exists()


def test_fetch_resumes_after_a_cut_connection(server, tmp_path):
    body = bytes(range(256)) * 8000
    server.files["/big.bin"] = body
    server.cut.add("/big.bin")
    dest = fetch(f"{server.url}/big.bin", tmp_path / "big.bin",
                 sha256=hashlib.sha256(body).hexdigest(), progress=False)
    assert dest.read_bytes() == body
    ranges = [r for path, r in server.log if path == "/big.bin"]
    assert ranges[0] is None and ranges[-1] == f"bytes={len(body) // 2}-"


def test_checksum_mismatch_is_refused_and_nothing_is_kept(server, tmp_path):
    server.files["/bad.tar"] = b"not what was published" * 100
    with pytest.raises(DownloadError, match="checksum mismatch"):
        fetch(f"{server.url}/bad.tar", tmp_path / "bad.tar", md5="0" * 32, progress=False)
    assert not (tmp_path / "bad.tar").exists() and not (tmp_path / "bad.tar.part").exists()


def test_unreachable_host_says_where_to_put_the_file(tmp_path, capsys):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # a refused connection is not retried (only a timeout or a reset is): one clear error
    with pytest.raises(DownloadError, match=rf"cannot reach .* put it at {tmp_path / 'x.tar'}"):
        fetch(f"http://127.0.0.1:{port}/x.tar", tmp_path / "x.tar", progress=False)
    assert "resuming" not in capsys.readouterr().err


def tar_bytes(folder, arcname, mode="w:gz"):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tar:
        tar.add(folder, arcname=arcname)
    return buffer.getvalue()


def test_unpacking_refuses_members_outside_the_target(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    archive = tmp_path / "evil.tar"
    archive.write_bytes(buffer.getvalue())
    with pytest.raises(ArchiveError, match="outside"):
        extract(archive, tmp_path / "out", progress=False)
    assert not (tmp_path / "escaped.txt").exists()


def test_voc_is_fetched_unpacked_placed_and_split(server, tmp_path):
    source = make_dataset("voc", tmp_path / "made", n_train=4, n_val=3, size=(32, 40), seed=8)
    (source / "pascal/VOC2011/ImageSets/Segmentation/seg11valid.txt").unlink()
    voc = tar_bytes(source / "pascal/VOC2011", "TrainVal/VOCdevkit/VOC2011", "w")
    sbd = tar_bytes(source / "sbdd/dataset", "benchmark_RELEASE/dataset")
    server.files.update({"/VOCtrainval.tar": voc, "/benchmark.tgz": sbd})
    server.cut.add("/benchmark.tgz")
    places = (Place(Download(f"{server.url}/VOCtrainval.tar", md5=md5(voc)), "pascal/VOC2011",
                    ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation")),
              Place(Download(f"{server.url}/benchmark.tgz", md5=md5(sbd)), "sbdd/dataset",
                    ("img", "cls", "train.txt")))
    root = tmp_path / "root"
    summary = fetch_dataset("voc", root, places=places, check_release=False, progress=False)
    assert "3 images" in summary
    assert (root / "sbdd/dataset/cls").is_dir() and (root / "pascal/VOC2011/JPEGImages").is_dir()
    derived = (root / "pascal/VOC2011/ImageSets/Segmentation/seg11valid.txt").read_text()
    val = (source / "pascal/VOC2011/ImageSets/Segmentation/val.txt").read_text().split()
    train = (source / "sbdd/dataset/train.txt").read_text().split()
    assert derived.split() == sorted(set(val) - set(train))
    assert not (root / "downloads" / "benchmark.tgz.unpacked").exists()
    # a second run finds everything in place and downloads nothing
    requests = len(server.log)
    fetch_dataset("voc", root, places=places, check_release=False, progress=False)
    assert len(server.log) == requests


def test_pascalcontext_without_labels_txt_says_what_is_missing(server, tmp_path):
    source = make_dataset("pascalcontext", tmp_path / "made", n_train=2, n_val=2,
                          size=(24, 24), seed=1)
    context = source / "pascal-context"
    labels59 = (context / "59_labels.txt").read_bytes()
    (context / "labels.txt").unlink()
    (context / "59_labels.txt").unlink()
    voc = tar_bytes(source / "pascal/VOC2010", "VOCdevkit/VOC2010", "w")
    trainval = tar_bytes(context / "trainval", "trainval")
    server.files.update({"/voc2010.tar": voc, "/trainval.tar.gz": trainval,
                         "/59_labels.txt": labels59})
    places = (Place(Download(f"{server.url}/voc2010.tar"), "pascal/VOC2010",
                    ("JPEGImages", "ImageSets/Main")),
              Place(Download(f"{server.url}/trainval.tar.gz"), "pascal-context", ("trainval",)),
              Place(Download(f"{server.url}/59_labels.txt", md5=md5(labels59)),
                    "pascal-context/59_labels.txt"))
    root = tmp_path / "root"
    with pytest.raises(ArchiveError, match=r"labels.txt is missing"):
        fetch_dataset("pascalcontext", root, places=places, check_release=False,
                      progress=False)
    assert (root / "pascal-context/59_labels.txt").read_bytes() == labels59
    assert len(list((root / "pascal-context/trainval").glob("*.mat"))) == 4
    shutil.rmtree(root / "downloads")
