"""Scoring a caffemodel on a split through the command line: metrics against a numpy
recount from the saved predictions and the ground-truth files, and SIFT Flow's
present-classes rule. Then the scoring loop itself in seconds (make mutate's score target):
a tiny net over the VOC data layer against a plain reference pass, the memory check per
picture, the JSON scores, the heads and load_covering's refusals."""

import json

import caffe
import numpy as np
import pytest
import scipy.io
from PIL import Image

from data.synthetic import make_dataset
from evaluation.metrics import (
    background_baseline,
    fast_hist,
    mean_iu_no_bg,
    present_classes,
    scores,
)
from evaluation.score import (
    Head,
    check_example_fits,
    data_layer,
    experiment_heads,
    json_scores,
    load_covering,
    main,
    next_example,
    score_weights,
    seg_test,
    split_size,
)
from evaluation.score import (
    TestResult as ScoredResult,
)
from nets.generate import write_experiment
from testkit.labels import read_label
from training.init import random_init

WIDTH = 0.125


def weights_for(experiment: str, folder, seed: int = 7):
    """Seeded quick-run weights with small random score layers (a varied prediction)."""
    paths = write_experiment(experiment, folder, width=WIDTH)
    net = caffe.Net(str(paths["deploy"]), caffe.TEST)
    random_init(net, seed)
    rng = np.random.RandomState(seed)
    for name in net.params:
        if name.startswith("score"):
            net.params[name][0].data[...] = rng.normal(0, 1e-3, net.params[name][0].data.shape)
    path = folder / "weights.caffemodel"
    net.save(str(path))
    return path


def test_score_cli_matches_a_recount(tmp_path, capsys):
    root = make_dataset("voc", tmp_path / "data", n_train=2, n_val=4, seed=5)
    weights = weights_for("voc-fcn8s", tmp_path / "model")
    save, report = tmp_path / "predictions", tmp_path / "scores.json"
    assert main(["--net", "voc-fcn8s", "--weights", str(weights), "--data", str(root),
                 "--width", str(WIDTH), "--save", str(save), "--json", str(report)]) == 0
    printed = capsys.readouterr().out
    assert "label: pixel acc" in printed and "background" in printed  # the class table
    voc = root / "pascal/VOC2011"
    ids = (voc / "ImageSets/Segmentation/seg11valid.txt").read_text().split()
    hist = np.zeros((21, 21), np.int64)
    for name in ids:
        truth = np.asarray(Image.open(voc / f"SegmentationClass/{name}.png"))
        prediction = read_label(save / f"{name}.png")
        assert prediction.shape == truth.shape
        hist += fast_hist(truth, prediction, 21)
    expected = scores(hist)
    result = json.loads(report.read_text())
    assert result["images"] == len(ids)
    # what decided these bits travels with them (core/fingerprint.py)
    assert result["fingerprint"]["data"]["items"] == len(ids)
    assert result["fingerprint"]["weights"].startswith("sha256:")
    assert result["fingerprint"]["numerics"] in ("pinned", "system")
    for key, value in expected.as_dict().items():
        assert result["label"][key] == pytest.approx(value)


def test_siftflow_semantics_over_present_classes(tmp_path):
    root = make_dataset("siftflow", tmp_path / "data", n_train=2, n_val=3, seed=6)
    weights = weights_for("siftflow-fcn32s", tmp_path / "model")
    result = score_weights("siftflow-fcn32s", weights, root, width=WIDTH, progress=False)
    folder = root / "sift-flow"
    test_ids = (folder / "test.txt").read_text().split()
    present = set()
    for name in test_ids:
        [mat] = folder.glob(f"SemanticLabels/*/{name}.mat")
        labels = scipy.io.loadmat(mat)["S"]
        present |= {int(v) - 1 for v in np.unique(labels) if v > 0}  # 1..33 → 0..32
    hist = result.hists["sem"]
    assert set(present_classes(hist).tolist()) == present
    out = result.as_dict()
    assert out["sem"]["classes_scored"] == len(present)
    assert out["sem"]["mean_iu"] == pytest.approx(scores(hist, sorted(present)).mean_iu)
    assert set(out) >= {"sem", "geo", "loss"}


def test_unknown_split_names_the_list(tmp_path, capsys):
    root = make_dataset("voc", tmp_path / "data", n_train=1, n_val=1, seed=8)
    assert main(["--net", "voc-fcn8s", "--weights", str(tmp_path / "w.caffemodel"),
                 "--data", str(root), "--split", "nosuch"]) == 1
    assert "nosuch.txt: split list not found" in capsys.readouterr().err


def test_a_one_stream_nyud_net_is_scored_with_the_memory_check(tmp_path):
    """The memory check sizes the net's own input blob: a one-stream NYUD net calls its
    input 'data' while its data layer names the channel 'color' (the check once looked up
    'color' and ended the paper run's Table 5 chain in a KeyError)."""
    root = make_dataset("nyud", tmp_path / "data", n_train=2, n_val=2, num_classes=5,
                        size=(48, 64), seed=3)
    weights = weights_for("nyud-fcn32s-color", tmp_path / "model")
    result = score_weights("nyud-fcn32s-color", weights, root, width=WIDTH, memory=True,
                           progress=False)
    assert result.images == 2
    assert 0 < result.hists["label"].sum() <= 2 * 48 * 64


# --- the scoring loop on a tiny net over the project's VOC data layer (seconds) --------------
TINY_IDS = 3


@pytest.fixture(scope="module")
def tiny_voc(tmp_path_factory):
    """Three 16×20 seg11valid pictures, the third grown to 64×80 (a larger one after two
    small: the memory check must size each picture, not the first)."""
    root = make_dataset("voc", tmp_path_factory.mktemp("data"), n_train=1, n_val=TINY_IDS,
                        num_classes=3, size=(16, 20), seed=4)
    voc = root / "pascal/VOC2011"
    ids = (voc / "ImageSets/Segmentation/seg11valid.txt").read_text().split()
    for folder, suffix in (("JPEGImages", "jpg"), ("SegmentationClass", "png")):
        path = voc / folder / f"{ids[-1]}.{suffix}"
        Image.open(path).resize((80, 64), Image.NEAREST).save(path)
    return voc, ids


def tiny_scoring_net(folder, voc) -> caffe.Net:
    """The VOC data layer feeding two 1×1 score layers of seeded weights: 'score' (with a
    softmax loss) against 'label', 'score2' against a copy 'label2'; 'score2' is an output
    that is no loss."""
    from caffe import layers as L

    n = caffe.NetSpec()
    n.data, n.label = L.Python(module="voc_layers", layer="VOCSegDataLayer", ntop=2,
                               param_str=str(dict(voc_dir=str(voc), split="seg11valid",
                                                  seed=1337, mean=(104.0, 116.7, 122.7))))
    n.score = L.Convolution(n.data, num_output=3, kernel_size=1)
    n.score2 = L.Convolution(n.data, num_output=3, kernel_size=1)
    n.label2 = L.Split(n.label)
    n.loss = L.SoftmaxWithLoss(n.score, n.label, loss_param=dict(ignore_label=255))
    n.silence = L.Silence(n.label2, ntop=0)
    path = folder / "tiny.prototxt"
    path.write_text(str(n.to_proto()))
    net = caffe.Net(str(path), caffe.TEST)
    rng = np.random.RandomState(2)
    for name in ("score", "score2"):
        for blob in net.params[name]:
            blob.data[...] = rng.normal(0, 0.05, blob.data.shape)
    return net


TINY_HEADS = [Head("score", "label", 3, background=0), Head("score2", "label2", 3,
                                                            present_only=True)]


def reference_pass(net, images: int):
    """What seg_test must find, counted plainly: each forward's argmax against its label."""
    hists = {h.label_blob: np.zeros((3, 3), np.int64) for h in TINY_HEADS}
    loss, predictions = 0.0, []
    for _ in range(images):
        net.forward()
        for head in TINY_HEADS:
            prediction = net.blobs[head.score_blob].data[0].argmax(axis=0)
            truth = net.blobs[head.label_blob].data[0, 0]
            hists[head.label_blob] += fast_hist(truth, prediction, 3)
            if head is TINY_HEADS[0]:
                predictions.append(prediction)
        loss += float(net.blobs["loss"].data)
    return hists, loss, predictions


def test_seg_test_accumulates_each_heads_histogram_and_the_mean_loss(tiny_voc, tmp_path):
    voc, ids = tiny_voc
    net = tiny_scoring_net(tmp_path, voc)
    assert data_layer(net) is not None and split_size(net) == TINY_IDS
    assert next_example(data_layer(net)) == ids[0]
    hists, loss, predictions = reference_pass(tiny_scoring_net(tmp_path, voc), TINY_IDS)
    assert all(h.sum() > 0 for h in hists.values()) and loss > 0
    result = seg_test(net, TINY_HEADS, images=TINY_IDS, save_dir=tmp_path / "png",
                      progress=False)
    assert result.images == TINY_IDS and result.heads == TINY_HEADS
    assert set(result.hists) == {"label", "label2"}
    for blob, hist in hists.items():
        np.testing.assert_array_equal(result.hists[blob], hist)
    assert result.losses == {"loss": pytest.approx(loss / TINY_IDS, rel=1e-6)}
    # the first head's predictions, named by the example they belong to
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == sorted(f"{i}.png"
                                                                         for i in ids)
    for name, prediction in zip(ids, predictions):
        np.testing.assert_array_equal(read_label(tmp_path / "png" / f"{name}.png"), prediction)
    # one image: its own loss, not half of it; none: zeros, not a division by zero
    _, first_loss, _ = reference_pass(tiny_scoring_net(tmp_path, voc), 1)
    one = seg_test(tiny_scoring_net(tmp_path, voc), TINY_HEADS, images=1, progress=False)
    assert one.losses == {"loss": pytest.approx(first_loss, rel=1e-6)}
    none = seg_test(tiny_scoring_net(tmp_path, voc), TINY_HEADS, images=0, progress=False)
    assert none.losses == {"loss": 0.0} and none.images == 0
    assert all(not h.any() and h.shape == (3, 3) and h.dtype == np.int64
               for h in none.hists.values())


def test_the_memory_check_sizes_each_picture_before_its_forward(tiny_voc, tmp_path,
                                                                monkeypatch):
    """memory=True scores alike when everything fits; under a limit the two small pictures
    fit and the large third does not, refused naming its file and size (the net reshaped to
    it, not sized at the first picture's shapes)."""
    from evaluation import runtime

    voc, ids = tiny_voc
    plain = seg_test(tiny_scoring_net(tmp_path, voc), TINY_HEADS, images=TINY_IDS,
                     progress=False)
    checked = seg_test(tiny_scoring_net(tmp_path, voc), TINY_HEADS, images=TINY_IDS,
                       progress=False, memory=True)
    for blob in plain.hists:
        np.testing.assert_array_equal(checked.hists[blob], plain.hists[blob])
    net = tiny_scoring_net(tmp_path, voc)
    net.reshape()
    small = runtime.forward_bytes(net)
    monkeypatch.setattr(runtime, "memory_limit", lambda: (int(4 * small / 0.75), "allowed"))
    assert check_example_fits(net, data_layer(net)) == str(voc / "JPEGImages" / f"{ids[0]}.jpg")
    with pytest.raises(runtime.OutOfMemory) as refused:
        seg_test(net, TINY_HEADS, images=TINY_IDS, progress=False, memory=True)
    picture = voc / "JPEGImages" / f"{ids[-1]}.jpg"
    assert str(refused.value).startswith(f"{picture}: scoring this 64×80 picture needs about ")
    assert "GiB allowed; raise the limit (ulimit -v unlimited)" in str(refused.value)
    assert tuple(net.blobs["data"].shape) == (1, 3, 64, 80)


def test_a_net_without_the_projects_data_layer_numbers_its_pictures(tmp_path):
    """Input layers: no split to count (the caller says how many) and no ids (the saved
    predictions are numbered)."""
    from caffe import layers as L

    n = caffe.NetSpec()
    n.score = L.Input(shape=dict(dim=[1, 3, 4, 5]))
    n.label = L.Input(shape=dict(dim=[1, 1, 4, 5]))
    path = tmp_path / "inputs.prototxt"
    path.write_text(str(n.to_proto()))
    net = caffe.Net(str(path), caffe.TEST)
    assert data_layer(net) is None and next_example(None) is None
    with pytest.raises(ValueError, match="give the count"):
        split_size(net)
    assert split_size(net, 7) == 7
    net.blobs["score"].data[0, 2] = 1.0  # every pixel predicts class 2
    net.blobs["label"].data[...] = np.arange(20).reshape(4, 5) % 3
    result = seg_test(net, [Head("score", "label", 3)], images=2, save_dir=tmp_path / "png",
                      progress=False, memory=True)
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == ["000000.png", "000001.png"]
    np.testing.assert_array_equal(result.hists["label"], [[0, 0, 14], [0, 0, 14], [0, 0, 12]])
    assert result.losses == {}
    with pytest.raises(ValueError, match=r"no blob\(s\) \['nosuch'\]"):
        seg_test(net, [Head("nosuch", "label", 3)], images=1, progress=False)


def test_the_json_scores_carry_each_heads_metrics_and_the_extras_its_dataset_asks_for():
    """A VOC-like head (background 0) gets the mean IU without it; a SIFT Flow-like head
    (present classes only) is averaged over the classes present and says how many. Class
    3 is predicted but never labelled: its IU of 0 counts only over all classes."""
    hist = np.array([[50, 2, 0, 1], [3, 20, 1, 0], [0, 4, 10, 2], [0, 0, 0, 0]], np.int64)
    assert scores(hist).mean_iu < scores(hist, [0, 1, 2]).mean_iu
    heads = [Head("score", "label", 4, background=0),
             Head("score_sem", "sem", 4, present_only=True)]
    result = ScoredResult({"label": hist, "sem": hist * 2}, heads, {"loss": 0.5}, images=4)
    assert result.scores(heads[0]) == scores(hist)
    assert result.scores(heads[1]) == scores(hist * 2, [0, 1, 2])
    out = result.as_dict()
    assert out["images"] == 4 and out["loss"] == {"loss": 0.5}
    assert out["label"] == {**scores(hist).as_dict(),
                            "background_mean_iu": background_baseline(hist).mean_iu,
                            "mean_iu_no_bg": mean_iu_no_bg(hist, 0)}
    assert out["sem"] == {**scores(hist * 2, [0, 1, 2]).as_dict(),
                          "background_mean_iu": background_baseline(hist * 2).mean_iu,
                          "classes_scored": 3}
    assert set(out) == {"images", "loss", "label", "sem"}


def test_json_scores_mark_every_non_finite_number_and_keep_the_rest():
    nan, inf = float("nan"), float("inf")
    given = {"images": 2, "loss": {"loss": nan}, "label": {"mean_iu": np.float64(nan),
                                                          "pixel_acc": 0.5, "f": -inf},
             "name": "x"}
    assert json_scores(given) == {"images": 2, "loss": {"loss": None}, "name": "x",
                                  "label": {"mean_iu": None, "pixel_acc": 0.5, "f": None},
                                  "non_finite": ["loss.loss", "label.mean_iu", "label.f"]}
    finite = {"images": 2, "label": {"mean_iu": 0.25}}
    assert json_scores(finite) == finite and "non_finite" not in json_scores(finite)
    assert json_scores({"a": inf}) == {"a": None, "non_finite": ["a"]}


def test_experiment_heads_follow_the_catalog():
    from nets.experiments import EXPERIMENTS

    [voc] = experiment_heads(EXPERIMENTS["voc-fcn8s"])
    assert (voc.score_blob, voc.label_blob, voc.num_classes, voc.present_only,
            voc.background) == ("score", "label", 21, False, 0)
    assert voc.names[:2] == ("background", "aeroplane") and len(voc.names) == 21
    sem, geo = experiment_heads(EXPERIMENTS["siftflow-fcn16s"])
    assert (sem.score_blob, sem.label_blob, sem.num_classes, sem.present_only,
            sem.background) == ("score_sem", "sem", 33, True, None)
    assert (geo.score_blob, geo.label_blob, geo.num_classes, geo.present_only,
            geo.background) == ("score_geo", "geo", 3, False, None)
    assert sem.names[0] == "awning" and geo.names == ("sky", "horizontal", "vertical")


def test_load_covering_refuses_weights_that_leave_a_learned_layer_out(tmp_path):
    """Weights of the tiny net without conv1b, loaded into the one with it: refused naming
    conv1b (Caffe would leave it at its filler and score nonsense) unless --allow-missing
    names it; a name the net lacks is refused; a file cut after conv1 says where it ends."""
    from caffe.proto import caffe_pb2

    from testkit.tiny_nets import write_tiny_deploy

    plain = caffe.Net(str(write_tiny_deploy(tmp_path / "plain.prototxt")), caffe.TEST)
    random_init(plain, 5)
    weights = tmp_path / "plain.caffemodel"
    plain.save(str(weights))
    extra = write_tiny_deploy(tmp_path / "extra.prototxt", extra_layer=True)
    net = caffe.Net(str(extra), caffe.TEST)
    with pytest.raises(ValueError, match=r"no weights for 1 of the net's 4 learned layers "
                                         r"\(conv1b\): weights of another net"):
        load_covering(net, weights)
    with pytest.raises(ValueError, match=r"--allow-missing names \['nosuch'\], which the net "
                                         r"does not have"):
        load_covering(net, weights, allow_missing=("nosuch",))
    load_covering(net, weights, allow_missing=("conv1b",))
    for name in plain.params:
        for mine, theirs in zip(net.params[name], plain.params[name]):
            np.testing.assert_array_equal(mine.data, theirs.data)
    whole = caffe_pb2.NetParameter.FromString(weights.read_bytes())
    cut = caffe_pb2.NetParameter()
    cut.CopyFrom(whole)
    del cut.layer[:]
    for layer in whole.layer:
        cut.layer.add().CopyFrom(layer)
        if layer.name == "conv1":
            break
    short = tmp_path / "short.caffemodel"
    short.write_bytes(cut.SerializeToString())
    with pytest.raises(ValueError, match=r"no weights for 2 of the net's 3 learned layers "
                                         r"\(score_fr, upscore\), all after layer 'conv1', "
                                         r"where the file ends \(\d+ bytes\): a file cut short"):
        load_covering(caffe.Net(str(tmp_path / "plain.prototxt"), caffe.TEST), short)
    with pytest.raises(ValueError, match=r"no weights for 3 of the net's 4 learned layers "
                                         r"\(conv1b, score_fr, upscore\), all after layer "
                                         r"'conv1'"):
        load_covering(net, short)


def test_numpys_memory_error_past_the_estimate_is_the_same_one_clear_error(tiny_voc, tmp_path,
                                                                           monkeypatch):
    """A MemoryError inside the loop (numpy's, on a picture the estimate let through) names
    the picture and the limit when the memory check is on; off (a GPU), it stays numpy's;
    the check's own refusal passes as it is."""
    from evaluation import runtime, score

    voc, ids = tiny_voc

    def fails(error):
        def hist(*args):
            raise error
        return hist

    monkeypatch.setattr(score, "memory_limit", lambda: (7 * 2**29, "allowed"))
    monkeypatch.setattr(score, "fast_hist", fails(MemoryError("numpy")))
    with pytest.raises(runtime.OutOfMemory) as refused:
        seg_test(tiny_scoring_net(tmp_path, voc), TINY_HEADS, images=1, progress=False,
                 memory=True)
    picture = voc / "JPEGImages" / f"{ids[0]}.jpg"
    assert str(refused.value) == (f"{picture}: out of memory while scoring this picture (the "
                                  f"3.50 GiB allowed); {score.SCORE_MEMORY_FIX}")
    with pytest.raises(MemoryError) as plain:
        seg_test(tiny_scoring_net(tmp_path, voc), TINY_HEADS, images=1, progress=False)
    assert type(plain.value) is MemoryError and str(plain.value) == "numpy"
    monkeypatch.setattr(score, "fast_hist", fails(runtime.OutOfMemory("the check's own")))
    with pytest.raises(runtime.OutOfMemory, match="^the check's own$"):
        seg_test(tiny_scoring_net(tmp_path, voc), TINY_HEADS, images=1, progress=False,
                 memory=True)


@pytest.mark.parametrize("count, listed", [(8, "c0, c1, c2, c3, c4, c5, c6, c7"),
                                           (9, "c0, c1, c2, c3, c4, c5, c6, c7 …")])
def test_missing_layers_are_listed_up_to_eight(tmp_path, count, listed):
    """Eight missing layers are all named; past eight the list ends in an ellipsis."""
    from caffe import layers as L

    def net_of(names):
        n = caffe.NetSpec()
        n.data = L.Input(shape=dict(dim=[1, 1, 2, 2]))
        for name in names:
            setattr(n, name, L.Convolution(n.data, num_output=1, kernel_size=1))
        path = tmp_path / f"{len(names)}.prototxt"
        path.write_text(str(n.to_proto()))
        return caffe.Net(str(path), caffe.TEST)

    other = tmp_path / "other.caffemodel"
    net_of(["other"]).save(str(other))
    with pytest.raises(ValueError, match=rf"no weights for {count} of the net's {count} "
                                         rf"learned layers \({listed}\): weights of another"):
        load_covering(net_of([f"c{k}" for k in range(count)]), other)
