"""compare on runs (compare/runs.py), on hand-made run folders: the numbers decide, provenance
is named beside them, and which notes say why numbers differ. Real caffemodels of a tiny
net; the trained runs and `make compare` are test_faults_compare.py's."""

import json
import shutil
from pathlib import Path

import pytest
from caffe.proto import caffe_pb2

from compare.errors import CompareError
from compare.runs import compare_runs, compare_weights, is_run, load_run
from core.errors import InputError
from core.manifest import record_result
from core.weights import FINAL_WEIGHTS
from testkit.tiny_nets import random_caffemodel, write_tiny_deploy

FINGERPRINT = {"numerics": "pinned", "blas_version": "0.3.21", "blas_kernel": "Haswell",
               "blas_probe": "ab12", "blas_thread_invariant": True, "blas_threads": 2,
               "cpu_model": "EPYC", "net": "n1"}


def write_log(path: Path, *records: dict) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def run_folder(path: Path, score: dict | None = None, fingerprint: dict | None = None,
               weights: Path | None = None, request: dict | None = None) -> Path:
    """A run folder: train.jsonl (a start record with the fingerprint), score.json when
    given, final weights copied from `weights`, a result manifest when `request` is given."""
    path.mkdir(parents=True)
    write_log(path / "train.jsonl", {"type": "start", "fingerprint": fingerprint or {}},
              {"type": "test", "iteration": 4, "loss": 0.5})
    files = []
    if score is not None:
        (path / "score.json").write_text(json.dumps(score))
        files.append(path / "score.json")
    if weights is not None:
        files.append(Path(shutil.copy(weights, path / FINAL_WEIGHTS)))
    if request is not None:
        record_result(path, files, request)
    return path


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """(a, b, c, d): a and b the same bits, c other values, d another layer definition."""
    root = tmp_path_factory.mktemp("weights")
    deploy = write_tiny_deploy(root / "deploy.prototxt")
    a = random_caffemodel(deploy, root / "a.caffemodel", seed=1)
    b = random_caffemodel(deploy, root / "b.caffemodel", seed=1)
    c = random_caffemodel(deploy, root / "c.caffemodel", seed=2)
    other = root / "other.prototxt"
    other.write_text(deploy.read_text().replace("std: 0.1", "std: 0.2", 1))
    d = random_caffemodel(other, root / "d.caffemodel", seed=1)
    return a, b, c, d


def test_what_counts_as_a_run(tmp_path):
    assert not is_run(tmp_path)
    write_log(tmp_path / "train.jsonl", {"type": "start"})
    assert is_run(tmp_path)
    scored = tmp_path / "scored"
    scored.mkdir()
    (scored / "score.json").write_text("{}")
    assert is_run(scored)
    assert is_run(tmp_path / "any.jsonl")
    (tmp_path / "with.json").write_text('{"fingerprint": {}, "mean_iu": 0.5}')
    (tmp_path / "without.json").write_text('{"mean_iu": 0.5}')
    (tmp_path / "broken.json").write_text('{"fingerprint"')
    (tmp_path / "list.json").write_text('[1, 2]')
    (tmp_path / "fingerprint.txt").write_text('{"fingerprint": {}}')
    (tmp_path / "fingerprint.csv").write_text('{"fingerprint": {}}')
    assert is_run(tmp_path / "with.json")
    assert not is_run(tmp_path / "without.json")
    assert not is_run(tmp_path / "broken.json")
    assert not is_run(tmp_path / "list.json")
    assert not is_run(tmp_path / "fingerprint.txt")
    assert not is_run(tmp_path / "fingerprint.csv")
    assert not is_run(tmp_path / "absent.json")


def test_the_numbers_of_a_results_file_are_every_number_but_the_fingerprint(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({
        "fingerprint": {"cpu_model": 3}, "time": 12.5, "type": 7, "ok": True,
        "name": "voc", "mean_iu": 0.625, "scores": {"iu": [0.5], "n": 4, "time": 1.0,
                                                    "deep": {"x": -2}}}))
    numbers, fingerprint = load_run(path)
    assert numbers == {"mean_iu": 0.625, "scores.n": 4, "scores.deep.x": -2}
    assert fingerprint == {"cpu_model": 3}


def test_a_train_log_gives_its_last_test_and_its_last_start(tmp_path):
    log = write_log(tmp_path / "train.jsonl",
                    {"type": "start", "fingerprint": {"seed": 1}},
                    {"type": "test", "iteration": 2, "mean_iu": 0.25},
                    {"type": "step", "iteration": 3, "loss": 9.0},
                    {"type": "start", "fingerprint": {"seed": 2}},
                    {"type": "test", "iteration": 4, "mean_iu": 0.5},
                    {"type": "snapshot", "iteration": 4}, {"type": "done", "iteration": 4})
    log.write_text(log.read_text().replace("\n", "\n\n", 1))   # blank lines are skipped
    assert load_run(log) == ({"iteration": 4, "mean_iu": 0.5}, {"seed": 2})
    resumed = write_log(tmp_path / "resumed.jsonl",
                        {"type": "start", "fingerprint": {"seed": 1}},
                        {"type": "test", "iteration": 2, "mean_iu": 0.25},
                        {"type": "resume", "iteration": 2},
                        {"type": "step", "iteration": 3, "loss": 1.0})
    assert load_run(resumed) == ({"iteration": 2, "mean_iu": 0.25}, {"seed": 1})
    untested = write_log(tmp_path / "untested.jsonl", {"type": "start"})
    assert load_run(untested) == ({}, {})
    with pytest.raises(CompareError, match=r"nostart\.jsonl: no start record"):
        load_run(write_log(tmp_path / "nostart.jsonl", {"type": "test", "mean_iu": 1.0}))
    (tmp_path / "torn.jsonl").write_text('{"type": "start"}\n{"type": "te\n')
    with pytest.raises(CompareError, match=r"torn\.jsonl: not a JSON-lines log"):
        load_run(tmp_path / "torn.jsonl")
    with pytest.raises(CompareError, match=r"absent\.json: no such file"):
        load_run(tmp_path / "absent.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(CompareError, match=r"bad\.json: not JSON"):
        load_run(tmp_path / "bad.json")


def test_a_run_folder_reads_its_scores_and_else_its_log(tmp_path):
    scored = run_folder(tmp_path / "scored", score={"mean_iu": 0.75}, fingerprint={"seed": 5})
    assert load_run(scored) == ({"mean_iu": 0.75}, {"seed": 5})
    (scored / "score.json").write_text('{"mean_iu": 0.75, "fingerprint": {"seed": 6}}')
    assert load_run(scored) == ({"mean_iu": 0.75}, {"seed": 6})
    logged = run_folder(tmp_path / "logged", fingerprint={"seed": 7})
    assert load_run(logged) == ({"iteration": 4, "loss": 0.5}, {"seed": 7})
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "score.json").write_text('{"mean_iu": 0.5}')
    assert load_run(bare) == ({"mean_iu": 0.5}, {})


def test_same_numbers_other_provenance_are_identical_in_numbers(tmp_path, weights):
    a, b, _, d = weights
    run_a = run_folder(tmp_path / "a", {"mean_iu": 0.5, "pixel_acc": 0.75}, FINGERPRINT, a,
                       request={"data": "/data/one", "iters": 4})
    run_b = run_folder(tmp_path / "b", {"mean_iu": 0.5, "pixel_acc": 0.75},
                       {**FINGERPRINT, "net": "n2"}, d, request={"data": "/data/two",
                                                                 "iters": 4})
    result = compare_runs(run_a, run_b)
    assert result.identical and result.rows == []
    assert result.provenance == [("fingerprint.net", "n1", "n2"),
                                 ("request.data", "/data/one", "/data/two"),
                                 ("weights.conv1 (convolution_param.weight_filler.std)",
                                  "0.10000000149011612", "0.20000000298023224")]
    assert result.notes == [
        "numbers: identical (2 scores and 5 weight blobs compared)",
        "provenance differs (fingerprint.net, request.data, the definition of 1 weight "
        "layer(s)): where and how the runs were made, not what they computed"]
    assert result.render().endswith("\nIDENTICAL IN NUMBERS")
    same = compare_runs(run_a, run_folder(tmp_path / "c", {"mean_iu": 0.5, "pixel_acc": 0.75},
                                          FINGERPRINT, b, request={"data": "/data/one",
                                                                   "iters": 4}))
    assert same.identical and same.provenance == []
    assert same.notes == ["numbers: identical (2 scores and 5 weight blobs compared)"]
    assert same.render().endswith("\nIDENTICAL")


def test_other_numbers_are_named_and_the_notes_say_which_fields_may_explain_them(tmp_path):
    scores = {"mean_iu": 0.5, "pixel_acc": 0.75, "n": 3}
    a = run_folder(tmp_path / "a", scores, FINGERPRINT)
    b = run_folder(tmp_path / "b", {**scores, "mean_iu": 0.5000001, "extra": 1},
                   {**FINGERPRINT, "blas_threads": 3})
    result = compare_runs(a, b)
    assert not result.identical
    assert result.rows == [("extra", None, 1), ("mean_iu", 0.5, 0.5000001)]
    # thread-count invariant libraries: the thread count does not decide the bits
    assert result.notes == ["numbers differ with the same BLAS kernels; look at the "
                            "provenance fields above (inputs, versions, seed)"]
    variant = {**FINGERPRINT, "blas_thread_invariant": False}
    c = run_folder(tmp_path / "c", scores, variant)
    d = run_folder(tmp_path / "d", {**scores, "n": 4},
                   {**variant, "blas_threads": 3, "blas_kernel": "Zen"})
    assert compare_runs(c, d).notes == [
        "numbers differ, and so do the BLAS fields that decide the bits (blas_kernel, "
        "blas_threads): other kernels round differently"]
    e = run_folder(tmp_path / "e", {**scores, "n": 4}, FINGERPRINT)
    assert compare_runs(a, e).notes == ["numbers differ with identical fingerprints: the "
                                        "code or the settings differ, not the machine"]
    assert compare_runs(a, e).rows == [("n", 3, 4)]


def test_a_side_without_a_fingerprint_is_said_to_be_unknown(tmp_path):
    a = run_folder(tmp_path / "a", {"mean_iu": 0.5}, FINGERPRINT)
    b = run_folder(tmp_path / "b", {"mean_iu": 0.5})
    for first, second in ((a, b), (b, a)):
        notes = compare_runs(first, second).notes
        assert notes[0] == ("one side has no fingerprint (a run from before fingerprints were "
                            "recorded): what decided its bits is unknown")
        assert notes[1] == "numbers: identical (1 scores compared)"


def test_final_weights_are_numbers_blob_by_blob(tmp_path, weights):
    a, _, c, _ = weights
    run_a = run_folder(tmp_path / "a", {"mean_iu": 0.5}, FINGERPRINT, a)
    run_c = run_folder(tmp_path / "c", {"mean_iu": 0.5}, FINGERPRINT, c)
    result = compare_runs(run_a, run_c)
    assert not result.identical
    assert [row[0] for row in result.rows] == ["weights.conv1[0]", "weights.conv1[1]",
                                               "weights.score_fr[0]", "weights.score_fr[1]",
                                               "weights.upscore[0]"]
    assert result.rows[0][1] == "108/108 values differ"
    assert result.rows[0][2].startswith("max |Δ| ") and result.rows[0][2].endswith(" ULP")
    unweighted = run_folder(tmp_path / "none", {"mean_iu": 0.5}, FINGERPRINT)
    assert compare_runs(run_a, unweighted).rows == [(FINAL_WEIGHTS, "present", "absent")]
    assert compare_runs(unweighted, run_a).rows == [(FINAL_WEIGHTS, "absent", "present")]
    assert compare_runs(unweighted, unweighted).notes[-1] == \
        "numbers: identical (1 scores compared)"


def test_weights_of_other_nets_name_layers_blobs_and_shapes(tmp_path, weights):
    a = weights[0]
    extra = write_tiny_deploy(tmp_path / "extra.prototxt", extra_layer=True)
    b = random_caffemodel(extra, tmp_path / "extra.caffemodel", seed=1)
    rows, provenance, blobs = compare_weights(a, b)
    assert ("weights.conv1b", "absent", "present") in rows
    assert compare_weights(b, a)[0][0] == ("weights.conv1b", "present", "absent")
    assert compare_weights(b, a)[2] == 5          # the layers after the absent one too
    assert provenance == [("weights.pool1 (bottom[0])", "'conv1'", "'conv1b'")]
    assert blobs == 5
    wide = write_tiny_deploy(tmp_path / "wide.prototxt", width=5)
    c = random_caffemodel(wide, tmp_path / "wide.caffemodel", seed=1)
    rows, _, blobs = compare_weights(a, c)
    assert rows[:2] == [("weights.conv1[0] shape", (4, 3, 3, 3), (5, 3, 3, 3)),
                        ("weights.conv1[1] shape", (4,), (5,))]
    assert blobs == 5
    assert compare_weights(c, a)[0][:2] == [("weights.conv1[0] shape", (5, 3, 3, 3),
                                              (4, 3, 3, 3)),
                                             ("weights.conv1[1] shape", (5,), (4,))]
    biasless = tmp_path / "biasless.prototxt"
    biasless.write_text(write_tiny_deploy(tmp_path / "plain.prototxt").read_text()
                        .replace("num_output: 4\n", "num_output: 4\n    bias_term: false\n"))
    d = random_caffemodel(biasless, tmp_path / "biasless.caffemodel", seed=1)
    rows, provenance, blobs = compare_weights(a, d)
    assert rows[0] == ("weights.conv1 blobs", 2, 1)
    assert compare_weights(d, a)[0][0] == ("weights.conv1 blobs", 1, 2)
    assert provenance[0][0] == "weights.conv1 (convolution_param.bias_term)"
    assert blobs == 3


def test_a_damaged_result_is_refused_not_compared(tmp_path, weights):
    a = weights[0]
    good = run_folder(tmp_path / "good", {"mean_iu": 0.5}, FINGERPRINT, a, request={"n": 1})
    damaged = run_folder(tmp_path / "damaged", {"mean_iu": 0.5}, FINGERPRINT, a,
                         request={"n": 1})
    (damaged / "score.json").write_text('{"mean_iu": 0.6}')
    for first, second in ((good, damaged), (damaged, good)):
        with pytest.raises(InputError, match=r"damaged/score\.json: sha256 "):
            compare_runs(first, second)
    (damaged / "score.json").unlink()  # gone, not only changed: its log is no stand-in
    for first, second in ((good, damaged), (damaged, good)):
        with pytest.raises(InputError, match=r"damaged/score\.json: missing, though "
                                             r".*result\.manifest\.json lists it"):
            compare_runs(first, second)
    (good / FINAL_WEIGHTS).rename(tmp_path / "aside.caffemodel")
    with pytest.raises(InputError, match=rf"good/{FINAL_WEIGHTS}: missing, though "):
        compare_runs(good, good)
    (tmp_path / "aside.caffemodel").rename(good / FINAL_WEIGHTS)
    weights_damaged = run_folder(tmp_path / "weights", {"mean_iu": 0.5}, FINGERPRINT, a,
                                 request={"n": 1})
    data = bytearray((weights_damaged / FINAL_WEIGHTS).read_bytes())
    data[-3] ^= 1
    (weights_damaged / FINAL_WEIGHTS).write_bytes(bytes(data))
    for first, second in ((good, weights_damaged), (weights_damaged, good)):
        with pytest.raises(InputError, match=rf"weights/{FINAL_WEIGHTS}: sha256 "):
            compare_runs(first, second)


def test_long_provenance_values_are_shortened(tmp_path):
    long = {"cpu_flags": "x" * 71, "env": {"B": "2", "A": "1"}}
    a = run_folder(tmp_path / "a", {"mean_iu": 0.5}, long)
    b = run_folder(tmp_path / "b", {"mean_iu": 0.5}, {"cpu_flags": "y" * 70, "env": {}})
    assert compare_runs(a, b).provenance == [
        ("fingerprint.cpu_flags", "x" * 67 + "...", "y" * 70),
        ("fingerprint.env", '{"A": "1", "B": "2"}', "{}")]


def test_weights_stored_as_doubles_differ_from_floats(tmp_path):
    def net(path, double):
        blob = caffe_pb2.BlobProto()
        blob.shape.dim.append(2)
        (blob.double_data if double else blob.data).extend([1.0, 2.0])
        layer = caffe_pb2.LayerParameter(name="w", type="Convolution")
        layer.blobs.append(blob)
        net = caffe_pb2.NetParameter(layer=[layer])
        path.write_bytes(net.SerializeToString())
        return path
    floats, doubles = net(tmp_path / "f", False), net(tmp_path / "d", True)
    for a, b in ((floats, doubles), (doubles, floats)):
        assert compare_weights(a, b) == ([("weights.w[0] shape", (2,), (2,))], [], 1)
