"""zoo.export: a Model Zoo folder with front matter, nets, solver, weights and scores."""

import hashlib
import shutil

import pytest

from testkit.tiny_nets import random_caffemodel, write_solver, write_tiny_deploy, write_tiny_train
from zoo.errors import ZooError
from zoo.export import CAFFE_COMMIT, export_model, main
from zoo.frontmatter import parse_readme
from zoo.scores import read_scores

LOG = """I0302 10:00:00.000 solver.cpp:228] Iteration 4000, loss = 12345.6
>>> 2016-03-02 10:11:12.131415 Begin seg tests
>>> 2016-03-02 10:11:12.131415 Iteration 4000 loss 54321.5
>>> 2016-03-02 10:11:12.131415 Iteration 4000 overall accuracy 0.8812
>>> 2016-03-02 10:11:12.131415 Iteration 4000 mean accuracy 0.7011
>>> 2016-03-02 10:11:12.131415 Iteration 4000 mean IU 0.5987
>>> 2016-03-02 10:11:12.131415 Iteration 4000 fwavacc 0.7900
>>> 2016-03-02 11:11:12.131415 Iteration 8000 overall accuracy 0.9012
>>> 2016-03-02 11:11:12.131415 Iteration 8000 mean accuracy 0.7555
>>> 2016-03-02 11:11:12.131415 Iteration 8000 mean IU 0.6543
>>> 2016-03-02 11:11:12.131415 Iteration 8000 fwavacc 0.8321
"""


@pytest.fixture
def experiment(tmp_path):
    net_dir = tmp_path / "tiny-fcn"
    net_dir.mkdir()
    deploy = write_tiny_deploy(net_dir / "deploy.prototxt")
    write_tiny_train(net_dir / "train.prototxt")
    write_tiny_train(net_dir / "val.prototxt")
    write_solver(net_dir / "solver.prototxt", "train.prototxt")
    weights = random_caffemodel(deploy, tmp_path / "trained.caffemodel", seed=7)
    log = tmp_path / "train.log"
    log.write_text(LOG)
    return net_dir, weights, log


def test_export_writes_the_zoo_convention(tmp_path, experiment):
    net_dir, weights, log = experiment
    out = tmp_path / "zoo"
    readme = export_model(net_dir, weights, out, log=log,
                          url="https://example.org/tiny.caffemodel", gist_id="abc123")
    names = sorted(p.name for p in out.iterdir())
    assert names == ["caffemodel-url", "deploy.prototxt", "readme.md", "solver.prototxt",
                     "train.prototxt", "trained.caffemodel", "val.prototxt"]
    fields = parse_readme(readme)
    assert fields["sha1"] == hashlib.sha1(weights.read_bytes()).hexdigest()
    assert fields["caffemodel"] == "trained.caffemodel"
    assert fields["caffemodel_url"] == "https://example.org/tiny.caffemodel"
    assert fields["caffe_commit"] == CAFFE_COMMIT
    assert fields["gist_id"] == "abc123"
    assert "iteration 8000: overall accuracy 0.9012" in fields["description"]
    assert "mean IU 0.6543" in fields["description"]
    assert (out / "caffemodel-url").read_text() == "https://example.org/tiny.caffemodel"
    body = readme.read_text()
    assert "| mean IU | 0.6543 |" in body
    assert "Best mean IU during training: 0.6543 at iteration 8000" in body
    for name in ("deploy.prototxt", "train.prototxt", "solver.prototxt"):
        assert (out / name).read_bytes() == (net_dir / name).read_bytes()


def test_front_matter_is_what_yaml_reads(tmp_path, experiment):
    yaml = pytest.importorskip("yaml", reason="PyYAML is not in the venv (requirements.txt)")
    net_dir, weights, log = experiment
    readme = export_model(net_dir, weights, tmp_path / "zoo", log=log)
    lines = readme.read_text().splitlines()
    end = lines.index("---", 1)
    assert yaml.safe_load("\n".join(lines[1:end])) == parse_readme(readme)


def test_default_url_points_at_the_exported_copy(tmp_path, experiment):
    net_dir, weights, _ = experiment
    readme = export_model(net_dir, weights, tmp_path / "zoo", caffemodel_name="m.caffemodel")
    url = parse_readme(readme)["caffemodel_url"]
    assert url == (tmp_path / "zoo" / "m.caffemodel").resolve().as_uri()


def test_weights_that_miss_a_learnable_layer_are_refused(tmp_path, experiment):
    net_dir, _, _ = experiment
    other = write_tiny_deploy(tmp_path / "other.prototxt", classes=3)
    text = other.read_text().replace('"score_fr"', '"score_other"')
    other.write_text(text)
    weights = random_caffemodel(other, tmp_path / "other.caffemodel")
    with pytest.raises(ZooError, match=r"other\.caffemodel: no parameters for layer "
                                       r"'score_fr' \(Convolution\)"):
        export_model(net_dir, weights, tmp_path / "zoo")
    assert not (tmp_path / "zoo").exists()


def test_existing_folder_needs_force(tmp_path, experiment, capsys):
    net_dir, weights, _ = experiment
    out = tmp_path / "zoo"
    argv = ["--net", str(net_dir), "--weights", str(weights), "--out", str(out)]
    assert main(argv) == 0
    assert main(argv) == 2
    assert "exists and is not empty (pass --force" in capsys.readouterr().err
    assert main(argv + ["--force"]) == 0


def test_net_by_experiment_name_and_bad_log(tmp_path, experiment):
    _, weights, _ = experiment
    # nets/voc-fcn8s is found by name; tiny weights do not cover its VGG layers
    with pytest.raises(ZooError, match=r"no parameters for layer 'conv1_1'"):
        export_model("voc-fcn8s", weights, tmp_path / "zoo")
    with pytest.raises(ZooError, match="neither a folder nor an experiment"):
        export_model("no-such-net", weights, tmp_path / "zoo")
    empty_log = tmp_path / "empty.log"
    empty_log.write_text("I0302 solver.cpp:228] Iteration 20, loss = 3\n")
    with pytest.raises(ZooError, match=r"empty\.log: no score lines"):
        read_scores(empty_log)
    incomplete = tmp_path / "incomplete"
    shutil.copytree(experiment[0], incomplete)
    (incomplete / "solver.prototxt").unlink()
    with pytest.raises(ZooError, match="has no solver.prototxt"):
        export_model(incomplete, weights, tmp_path / "zoo2")
