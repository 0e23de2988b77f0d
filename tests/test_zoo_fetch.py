"""zoo.fetch: import weights from a zoo folder or a release caffemodel-url, verified."""

import hashlib
import shutil
import socket

import pytest

from testkit.tiny_nets import (
    published_model,
    random_caffemodel,
    write_tiny_deploy,
)
from zoo.errors import ZooError
from zoo.export import export_model
from zoo.fetch import import_weights, main
from zoo.serve import serve_directory


@pytest.fixture
def published(tmp_path):
    """A trained tiny model on a 'server' folder, and the experiment's net folder."""
    return published_model(tmp_path, "tiny", seed=5)


def _zoo(tmp_path, net_dir, weights, url):
    readme = export_model(net_dir, weights, tmp_path / "zoo", url=url)
    (readme.parent / weights.name).unlink()          # as a user gets it: no weights yet
    return readme.parent


def test_import_from_zoo_folder_downloads_and_verifies(tmp_path, published, capsys):
    server, net_dir, weights = published
    with serve_directory(server) as base:
        folder = _zoo(tmp_path, net_dir, weights, f"{base}/tiny.caffemodel")
        assert main([str(folder)]) == 0
    fetched = folder / "tiny.caffemodel"
    assert fetched.read_bytes() == weights.read_bytes()
    sha1 = hashlib.sha1(weights.read_bytes()).hexdigest()
    assert f"sha1 {sha1}" in capsys.readouterr().out
    assert import_weights(folder) == fetched           # a verified copy is kept, no server


def test_wrong_sha1_is_refused_and_nothing_kept(tmp_path, published):
    server, net_dir, weights = published
    with serve_directory(server) as base:
        folder = _zoo(tmp_path, net_dir, weights, f"{base}/tiny.caffemodel")
        readme = folder / "readme.md"
        good = hashlib.sha1(weights.read_bytes()).hexdigest()
        readme.write_text(readme.read_text().replace(good, "0" * 40))
        with pytest.raises(ZooError, match=r"checksum mismatch, expected sha1 0{40}, got "
                                           + good):
            import_weights(folder)
    assert not (folder / "tiny.caffemodel").exists()
    assert not (folder / "tiny.caffemodel.part").exists()


def test_release_style_caffemodel_url(tmp_path, published):
    server, net_dir, weights = published
    release = tmp_path / "release" / "tiny-fcn"
    shutil.copytree(net_dir, release)
    with serve_directory(server) as base:
        (release / "caffemodel-url").write_text(f"{base}/tiny.caffemodel")
        path = import_weights(release / "caffemodel-url")
        assert path == release / "tiny.caffemodel"
        sha1 = hashlib.sha1(weights.read_bytes()).hexdigest()
        other = import_weights(release, tmp_path / "elsewhere.caffemodel", sha1=sha1)
        assert other.read_bytes() == weights.read_bytes()
        with pytest.raises(ZooError, match="checksum mismatch"):
            import_weights(release, tmp_path / "third.caffemodel", sha1="1" * 40)


def test_weights_that_do_not_fit_the_deploy_beside_them(tmp_path, published):
    server, net_dir, _ = published
    other = write_tiny_deploy(tmp_path / "other.prototxt")
    other.write_text(other.read_text().replace('"conv1"', '"conv_other"'))
    random_caffemodel(other, server / "other.caffemodel")
    release = tmp_path / "release"
    shutil.copytree(net_dir, release)
    with serve_directory(server) as base:
        (release / "caffemodel-url").write_text(f"{base}/other.caffemodel")
        with pytest.raises(ZooError, match="no parameters for layer 'conv1'"):
            import_weights(release)


def test_offline_says_where_to_put_the_file(tmp_path, published):
    _, net_dir, weights = published
    with socket.socket() as s:                       # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    folder = _zoo(tmp_path, net_dir, weights, f"http://127.0.0.1:{port}/tiny.caffemodel")
    with pytest.raises(ZooError, match=r"download the file elsewhere and put it at .*"
                                       r"tiny\.caffemodel"):
        import_weights(folder)


def test_not_a_zoo_source(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    assert "neither a zoo folder (readme.md) nor a caffemodel-url file" in \
        capsys.readouterr().err
    bad = tmp_path / "caffemodel-url"
    bad.write_text("two words")
    with pytest.raises(ZooError, match="expected one http"):
        import_weights(bad)
