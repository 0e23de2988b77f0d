"""compare detects the artifact kind from suffix or content, and refuses mixed kinds."""

import shutil

import numpy as np
import pytest
from PIL import Image

from compare.cli import detect_kind, main
from testkit.tiny_nets import random_caffemodel, write_tiny_deploy


@pytest.fixture
def artifacts(tmp_path):
    deploy = write_tiny_deploy(tmp_path / "deploy.prototxt")
    weights = random_caffemodel(deploy, tmp_path / "w.caffemodel")
    png = tmp_path / "seg.png"
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(png)
    return {"prototxt": deploy, "caffemodel": weights, "segmentation": png}


def test_kind_from_content_without_suffix(tmp_path, artifacts):
    for kind, path in artifacts.items():
        bare = shutil.copy(path, tmp_path / f"bare-{kind}")
        assert detect_kind(path) == kind
        assert detect_kind(bare) == kind


def test_mixed_kinds_and_missing_files_exit_two(tmp_path, artifacts, capsys):
    assert main([str(artifacts["prototxt"]), str(artifacts["segmentation"])]) == 2
    assert "(prototxt) with" in capsys.readouterr().err
    assert main([str(artifacts["prototxt"]), str(tmp_path / "absent.prototxt")]) == 2
    assert "absent.prototxt: no such file" in capsys.readouterr().err
