"""The exported folder through Caffe's own scripts/download_model_binary.py, unmodified.

Caffe's script needs PyYAML; under PyYAML 6 it only runs with zoo.caffe_downloader's shim
(yaml.load given a default Loader), and the as-is run fails for exactly that reason.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from testkit.tiny_nets import (
    published_model,
)
from zoo.caffe_downloader import downloader_command, downloader_script
from zoo.export import export_model
from zoo.serve import serve_directory


def run_caffe_downloader(model_dir: Path | str, *, as_is: bool = False,
                         timeout: float = 600) -> subprocess.CompletedProcess:
    """Run it; the result's returncode and stdout/stderr are the script's own."""
    return subprocess.run(downloader_command(model_dir, as_is=as_is), capture_output=True,
                          text=True, timeout=timeout, check=False)


yaml = pytest.importorskip("yaml", reason="Caffe's downloader imports PyYAML: add PyYAML to "
                                          "requirements.txt")


@pytest.fixture
def zoo_folder(tmp_path):
    return published_model(tmp_path, "tiny-fcn", seed=11)


def _export(tmp_path, net_dir, weights, url):
    readme = export_model(net_dir, weights, tmp_path / "zoo", url=url)
    (readme.parent / weights.name).unlink()
    return readme.parent


def test_script_is_caffes_own(zoo_folder):
    script = downloader_script()
    assert script.parts[-2:] == ("scripts", "download_model_binary.py")
    assert "required_keys = ['caffemodel', 'caffemodel_url', 'sha1']" in script.read_text()


def test_round_trip_through_caffes_downloader(tmp_path, zoo_folder):
    server, net_dir, weights = zoo_folder
    with serve_directory(server) as base:
        folder = _export(tmp_path, net_dir, weights, f"{base}/tiny-fcn.caffemodel")
        first = run_caffe_downloader(folder, timeout=60)
        assert first.returncode == 0, first.stdout + first.stderr
        fetched = folder / "tiny-fcn.caffemodel"
        assert hashlib.sha1(fetched.read_bytes()).hexdigest() == \
            hashlib.sha1(weights.read_bytes()).hexdigest()
        second = run_caffe_downloader(folder, timeout=60)
        assert second.returncode == 0 and "Model already exists." in second.stdout


def test_wrong_sha1_fails_in_caffes_downloader(tmp_path, zoo_folder):
    server, net_dir, weights = zoo_folder
    with serve_directory(server) as base:
        folder = _export(tmp_path, net_dir, weights, f"{base}/tiny-fcn.caffemodel")
        readme = folder / "readme.md"
        good = hashlib.sha1(weights.read_bytes()).hexdigest()
        readme.write_text(readme.read_text().replace(good, "f" * 40))
        result = run_caffe_downloader(folder, timeout=60)
    assert result.returncode == 1
    assert "ERROR: model did not download correctly!" in result.stdout


def test_corrupted_front_matter_fails_in_caffes_downloader(tmp_path, zoo_folder):
    server, net_dir, weights = zoo_folder
    folder = _export(tmp_path, net_dir, weights, "http://127.0.0.1:9/none.caffemodel")
    readme = folder / "readme.md"
    readme.write_text(readme.read_text().replace("sha1:", "checksum:"))
    result = run_caffe_downloader(folder, timeout=60)
    assert result.returncode == 2
    assert "Must be valid Caffe model directory with a correct readme.md" in result.stderr


def test_as_is_fails_only_on_pyyaml6_load_signature(tmp_path, zoo_folder):
    if int(yaml.__version__.split(".")[0]) < 6:
        pytest.skip("PyYAML < 6 still accepts yaml.load(text)")
    server, net_dir, weights = zoo_folder
    folder = _export(tmp_path, net_dir, weights, "http://127.0.0.1:9/none.caffemodel")
    result = run_caffe_downloader(folder, as_is=True, timeout=60)
    assert result.returncode == 2
    assert "load() missing 1 required positional argument: 'Loader'" in result.stdout
