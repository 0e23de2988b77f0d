"""Classifier downloads (surgery.fetch): model-zoo facts read from the Caffe source, files
served by a local server, verified and converted into FCN bases the project's nets fit."""

import functools
import hashlib
import http.server
import shutil
import threading
from pathlib import Path

import caffe
import numpy as np
import pytest

from core.caffe_files import as_file, read_params, read_prototxt
from core.download import DownloadError
from surgery.definition import without_fillers
from surgery.fetch import (
    CLASSIFIERS,
    REPO,
    Classifier,
    Remote,
    caffe_models_dir,
    fetch_and_convert,
    zoo_remote,
)
from surgery.prepare import prepare
from testkit.classifiers import net_params, small_classifier, to_v1_caffemodel, to_v1_prototxt


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/served; yields its base URL."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", served
    httpd.shutdown()
    httpd.server_close()


def random_weights(deploy: Path, path: Path, seed: int) -> str:
    """Save random weights for a zoo deploy definition; returns the file's sha1."""
    with as_file(without_fillers(read_prototxt(deploy))) as proto:
        net = caffe.Net(proto, caffe.TEST)
    rng = np.random.default_rng(seed)
    for blobs in net.params.values():
        for b in blobs:
            b.data[...] = rng.standard_normal(b.data.shape, dtype=np.float32)
    net.save(str(path))
    return hashlib.sha1(path.read_bytes()).hexdigest()


def zoo_copy(tmp_path, folder: str, url: str, sha1: str) -> Path:
    """A models/ folder with the real deploy.prototxt of `folder` and a readme.md whose
    front matter points at `url`."""
    models = tmp_path / "models"
    (models / folder).mkdir(parents=True)
    shutil.copy(caffe_models_dir() / folder / "deploy.prototxt", models / folder)
    (models / folder / "readme.md").write_text(
        f"---\nname: test copy\ncaffemodel: {folder}.caffemodel\ncaffemodel_url: {url}\n"
        f"license: unrestricted\nsha1: {sha1}\n---\n\nText.\n")
    return models


def test_model_zoo_facts_come_from_the_caffe_source():
    models = caffe_models_dir()
    caffenet = zoo_remote(models / "bvlc_reference_caffenet")
    assert caffenet.url.endswith("/bvlc_reference_caffenet.caffemodel")
    assert caffenet.sha1 == "4c8d77deb20ea792f84eb5e6d0a11ca0a8660a46"
    assert zoo_remote(models / "bvlc_googlenet").sha1 == "405fc5acd08a3bb12de8ee5e23a96bec22f08204"
    for classifier in CLASSIFIERS.values():
        assert (REPO / classifier.check_net).is_file(), classifier.check_net


def test_googlenet_downloads_verifies_and_fits_voc_fcn_googlenet(tmp_path, server):
    url, served = server
    deploy = caffe_models_dir() / "bvlc_googlenet" / "deploy.prototxt"
    sha1 = random_weights(deploy, served / "bvlc_googlenet.caffemodel", seed=0)
    models = zoo_copy(tmp_path, "bvlc_googlenet", url + "bvlc_googlenet.caffemodel", sha1)
    out = fetch_and_convert(CLASSIFIERS["googlenet"], tmp_path / "ilsvrc-nets",
                            models_dir=models, progress=False)
    assert out == tmp_path / "ilsvrc-nets" / "googlenet-fcn.caffemodel"
    base = read_params(out)
    assert "loss3/classifier" not in base and "inception_5b/pool_proj" in base
    report = prepare(REPO / "nets" / "voc-fcn-googlenet" / "deploy.prototxt",
                     tmp_path / "start.caffemodel", base=out, verbose=False)
    assert report.left_at_init == ["score_fr", "upscore"]


def test_caffenet_converts_to_the_alexnet_fcn_base(tmp_path):
    weights_dir = tmp_path / "ilsvrc-nets"
    weights_dir.mkdir()
    deploy = caffe_models_dir() / "bvlc_reference_caffenet" / "deploy.prototxt"
    sha1 = random_weights(deploy, weights_dir / "bvlc_reference_caffenet.caffemodel", seed=1)
    # already in the folder and matching the readme's sha1: used without a download
    models = zoo_copy(tmp_path, "bvlc_reference_caffenet", "http://127.0.0.1:9/unused", sha1)
    out = fetch_and_convert(CLASSIFIERS["caffenet"], weights_dir, models_dir=models,
                            progress=False, verbose=False)
    base = read_params(out)
    assert list(base) == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7"]
    assert base["fc6"][0].shape == (4096, 256, 6, 6)
    report = prepare(REPO / "nets" / "voc-fcn-alexnet" / "deploy.prototxt",
                     tmp_path / "start.caffemodel", base=out, verbose=False)
    assert report.left_at_init == ["score_fr", "upscore"]


def test_v1_remote_files_with_md5_like_vgg16(tmp_path, server):
    url, served = server
    caffe.set_random_seed(0)
    definition = small_classifier(76)
    (served / "deploy.prototxt").write_text(to_v1_prototxt(definition))
    with as_file(definition) as proto:
        weights = to_v1_caffemodel(net_params(caffe.Net(proto, caffe.TEST)))
    (served / "cls.caffemodel").write_bytes(weights)
    md5 = hashlib.md5(weights).hexdigest()
    classifier = Classifier(
        "small-fcn", ("fc8",), str(tmp_path / "no-check.prototxt"),
        deploy=Remote(url + "deploy.prototxt", "deploy.prototxt"),
        caffemodel=Remote(url + "cls.caffemodel", "cls.caffemodel", md5=md5,
                          size=len(weights)))
    out = fetch_and_convert(classifier, tmp_path / "w", progress=False, verbose=False)
    assert list(read_params(out))[-2:] == ["fc6", "fc7"]

    wrong = Classifier("x", ("fc8",), "none", deploy=classifier.deploy,
                       caffemodel=Remote(url + "cls.caffemodel", "other.caffemodel",
                                         md5="0" * 32))
    with pytest.raises(DownloadError, match="checksum mismatch, expected md5 0000"):
        fetch_and_convert(wrong, tmp_path / "w", progress=False)
    offline = Classifier("x", ("fc8",), "none", deploy=classifier.deploy,
                         caffemodel=Remote("http://127.0.0.1:9/cls.caffemodel",
                                           "offline.caffemodel"))
    with pytest.raises(DownloadError, match="put it at .*offline.caffemodel"):
        fetch_and_convert(offline, tmp_path / "w", progress=False)
