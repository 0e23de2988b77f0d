"""The loss pieces of the paper's analyses against NumPy: one-hot targets into Caffe's
sigmoid cross-entropy (void ignored), the null background's argmax, loss-cell sampling
into the softmax loss, InfogainLoss with a diagonal H as a class-weighted softmax."""

import caffe
import numpy as np
import pytest
from caffe import layers as L
from caffe import params as P
from loss_layers import LossLayerError, cell_mask, one_hot

from nets import heads
from training.balance import class_counts, inverse_frequency, read_infogain, write_infogain

C, H, W = 5, 37, 45


def make_net(tmp_path, build, name="net"):
    """A net from Input blobs 'score' (1×C×H×W) and 'label' (1×1×H×W) and `build(n)`."""
    n = caffe.NetSpec()
    n.score = L.Input(shape=dict(dim=[1, C, H, W]))
    n.label = L.Input(shape=dict(dim=[1, 1, H, W]))
    build(n)
    proto = n.to_proto()
    proto.force_backward = True
    path = tmp_path / f"{name}.prototxt"
    path.write_text(str(proto))
    return caffe.Net(str(path), caffe.TRAIN)


def inputs(seed=0, classes=C):
    rng = np.random.RandomState(seed)
    score = rng.normal(0, 3, (1, C, H, W)).astype(np.float32)
    label = rng.randint(0, classes, (1, 1, H, W)).astype(np.float32)
    label[0, 0, rng.rand(H, W) < 0.15] = 255  # void
    return score, label


def run(net, score, label):
    net.blobs["score"].data[...] = score
    net.blobs["label"].data[...] = label
    net.forward()
    net.backward()
    return float(net.blobs["loss"].data), net.blobs["score"].diff.copy()


def sigmoid(x):
    return 1 / (1 + np.exp(-x.astype(np.float64)))


@pytest.mark.parametrize("first", [0, 1])
def test_one_hot_targets_and_sigmoid_loss_match_numpy(tmp_path, first):
    """first=0: 21 learned scores (the control); first=1: the null background's 20 class
    targets, background = no class. Void pixels add no loss and get no gradient."""
    classes = C + first  # the score blob holds the learned classes
    score, label = inputs(1, classes)

    def build(n):
        heads.sigmoid_loss(n, n.score, heads.one_hot(n, n.label, classes, first))
    loss, diff = run(make_net(tmp_path, build), score, label)

    target = np.stack([(label[0, 0] == c) for c in range(first, classes)])[None].astype(float)
    valid = np.broadcast_to(label != 255, score.shape)
    x = score.astype(np.float64)
    per = -(target * np.log(sigmoid(x)) + (1 - target) * np.log(1 - sigmoid(x)))
    assert loss == pytest.approx(per[valid].sum(), rel=1e-5)
    expected = np.where(valid, sigmoid(x) - target, 0)
    np.testing.assert_allclose(diff, expected, rtol=1e-5, atol=1e-6)
    assert (diff[~valid] == 0).all()


def test_one_hot_reference_and_errors():
    label = np.array([[[[0, 2, 255], [1, 1, 0]]]], np.float32)
    out = one_hot(label, 3, first=1)
    np.testing.assert_array_equal(out[0, 0], [[0, 0, 255], [1, 1, 0]])
    np.testing.assert_array_equal(out[0, 1], [[0, 1, 255], [0, 0, 0]])
    with pytest.raises(LossLayerError, match=r"label values \[7\]"):
        one_hot(np.array([[[[7]]]], np.float32), 3)


def test_a_bad_declaration_is_an_error_naming_the_key(tmp_path):
    def build(n):
        n.target = L.Python(n.label, module="loss_layers", layer="OneHotLayer",
                            param_str="{'clases': 21}")
    with pytest.raises(LossLayerError, match="unknown keys \\['clases'\\].*missing keys "
                                             "\\['classes'\\]"):
        make_net(tmp_path, build)


def test_null_background_argmax_picks_background_exactly_when_every_class_is_negative(
        tmp_path):
    """The null channel joined at the coarse scores and upsampled bilinearly with the learned
    ones stays exactly zero; argmax never picks a class scoring below it."""
    from surgery.interp import interp

    n = caffe.NetSpec()
    n.score_fr = L.Input(shape=dict(dim=[1, C, 6, 7]))
    n.upscore = heads.upsample(heads.with_null_background(n, n.score_fr), C + 1, 32)
    heads.class_scores(n, n.upscore)
    path = tmp_path / "null.prototxt"
    path.write_text(str(n.to_proto()))
    net = caffe.Net(str(path), caffe.TEST)
    interp(net)
    assert not net.params["score_null"][0].data.any()  # as surgery and the init leave it
    coarse = np.random.RandomState(2).normal(-1, 2, (1, C, 6, 7)).astype(np.float32)
    net.blobs["score_fr"].data[...] = coarse
    net.forward()
    full = net.blobs["upscore"].data[0]
    assert full.shape[0] == C + 1
    assert (full[0] == 0).all()
    np.testing.assert_array_equal(net.blobs["score_classes"].data[0], full[1:])
    prediction = full.argmax(0)
    all_negative = (full[1:] < 0).all(0)
    assert all_negative.any() and (~all_negative).any()
    np.testing.assert_array_equal(prediction == 0, all_negative)
    chosen = np.take_along_axis(full, prediction[None], 0)[0]
    assert (chosen >= 0).all()  # a class whose score is below zero never wins


def sampler(tmp_path, p, seed=7, name="s"):
    def build(n):
        heads.sampled_label(n, n.label, p, seed)
        n.loss = L.SoftmaxWithLoss(n.score, n.label_kept,
                                   loss_param=dict(ignore_label=255, normalize=False))
    return make_net(tmp_path, build, name)


def test_sampling_keeps_or_voids_whole_cells_independently(tmp_path):
    score, label = inputs(3)
    net = sampler(tmp_path, 0.5)
    kept_fraction, masks = [], []
    for _ in range(40):
        run(net, score, label)
        kept = net.blobs["label_kept"].data[0, 0]
        same = kept == label[0, 0]
        for y in range(0, H, 32):
            for x in range(0, W, 32):
                block = (slice(y, y + 32), slice(x, x + 32))
                assert same[block].all() or (kept[block] == 255).all()
        mask = np.array([[(kept[y:y + 32, x:x + 32] != 255).any() for x in range(0, W, 32)]
                         for y in range(0, H, 32)])  # every block has labelled pixels
        masks.append(mask)
        kept_fraction.append(mask.mean())
    assert 0.3 < np.mean(kept_fraction) < 0.7
    assert len({m.tobytes() for m in masks}) > 5  # a new draw each forward


def test_sampled_softmax_gradient_is_the_full_gradient_on_kept_cells_only(tmp_path):
    score, label = inputs(4)
    full = make_net(tmp_path, lambda n: heads.loss(n, n.score, n.label), "full")
    full_loss, full_diff = run(full, score, label)
    x = score[0].astype(np.float64)
    prob = np.exp(x - x.max(0)) / np.exp(x - x.max(0)).sum(0)
    onehot = np.stack([label[0, 0] == c for c in range(C)])
    reference = np.where(label[0] != 255, prob - onehot, 0)
    np.testing.assert_allclose(full_diff[0], reference, rtol=1e-5, atol=1e-6)

    net = sampler(tmp_path, 0.25)
    for _ in range(3):
        loss, diff = run(net, score, label)
        kept = net.blobs["label_kept"].data[0, 0] != 255
        np.testing.assert_allclose(diff[0][:, kept], full_diff[0][:, kept], rtol=1e-6)
        assert (diff[0][:, ~kept] == 0).all()
        assert loss <= full_loss


def test_sampling_with_p_one_copies_the_label_bit_for_bit(tmp_path):
    score, label = inputs(5)
    full_loss, full_diff = run(make_net(tmp_path, lambda n: heads.loss(n, n.score, n.label),
                                        "full"), score, label)
    net = sampler(tmp_path, 1.0)
    for _ in range(2):
        loss, diff = run(net, score, label)
        np.testing.assert_array_equal(net.blobs["label_kept"].data, label)
        assert loss == full_loss
        np.testing.assert_array_equal(diff, full_diff)


def test_sampling_draws_depend_on_seed_and_forward_number_only(tmp_path):
    """What resume relies on: skip_forwards(n) then a forward = the (n+1)-th forward."""
    score, label = inputs(6)
    a = sampler(tmp_path, 0.5, name="a")
    drawn = []
    for _ in range(4):
        run(a, score, label)
        drawn.append(a.blobs["label_kept"].data.copy())
    b = sampler(tmp_path, 0.5, name="b")
    layer = next(x for x in b.layers if hasattr(x, "skip_forwards"))
    layer.skip_forwards(3)
    run(b, score, label)
    np.testing.assert_array_equal(b.blobs["label_kept"].data, drawn[3])
    other = sampler(tmp_path, 0.5, seed=8, name="c")
    run(other, score, label)
    assert not np.array_equal(other.blobs["label_kept"].data, drawn[0])


def test_cell_mask_cuts_edge_cells_at_the_border():
    keep = cell_mask((70, 33), 32, 0.5, np.random.default_rng(0))
    assert keep.shape == (70, 33)
    assert all(len(np.unique(keep[y:y + 32, x:x + 32])) == 1
               for y in (0, 32, 64) for x in (0, 32))


@pytest.mark.parametrize("p", [0.2, 0.8])
def test_each_cell_is_kept_with_probability_p_not_one_minus_p(p):
    """At p = 0.5 keeping with p and with 1 - p look alike; at 0.2 and 0.8 they do not."""
    keep = cell_mask((100 * 8, 100 * 8), 8, p, np.random.default_rng(3))
    kept_cells = keep[::8, ::8].mean()  # 10 000 cells: the fraction is within ±0.02 of p
    assert abs(kept_cells - p) < 0.02


def test_infogain_with_diagonal_h_is_the_class_weighted_softmax(tmp_path):
    score, label = inputs(7)
    counts = np.array([700, 50, 0, 200, 50])
    weights = inverse_frequency(counts)
    assert weights[2] == 1.0  # absent class
    present = counts > 0
    assert (counts[present] / counts.sum() * weights[present]).sum() == pytest.approx(1)
    source = write_infogain(tmp_path / "h.binaryproto", weights)
    np.testing.assert_allclose(read_infogain(source), weights, rtol=1e-6)
    loss, diff = run(make_net(tmp_path, lambda n: heads.weighted_loss(n, n.score, n.label,
                                                                      str(source))),
                     score, label)
    x = score[0].astype(np.float64)
    prob = np.exp(x - x.max(0)) / np.exp(x - x.max(0)).sum(0)
    valid = label[0, 0] != 255
    y = np.where(valid, label[0, 0], 0).astype(int)
    w = np.where(valid, weights[y], 0)
    picked = np.take_along_axis(prob, y[None], 0)[0]
    assert loss == pytest.approx(-(w * np.log(picked))[valid].sum(), rel=1e-5)
    onehot = np.stack([y == c for c in range(C)])
    np.testing.assert_allclose(diff[0], w * (prob - onehot), rtol=1e-4, atol=1e-6)


def test_class_counts_are_labelled_pixels_per_class_void_and_strays_left_out():
    labels = [np.array([[0, 0, 1], [255, 2, 2]], np.uint8), np.array([[2, 3, 255]], np.uint8)]
    assert class_counts(labels, 3).tolist() == [2, 1, 3]
    assert class_counts([], 3).tolist() == [0, 0, 0]


def test_a_class_of_one_pixel_is_present_and_weighs_most(tmp_path):
    weights = inverse_frequency(np.array([3, 1, 0]))
    np.testing.assert_allclose(weights, [4 / 6, 4 / 2, 1])
    with pytest.raises(ValueError, match="no labelled pixels"):
        inverse_frequency(np.zeros(3))
    # beside its split list, in a folder that may not exist yet
    source = write_infogain(tmp_path / "new" / "folder" / "h.binaryproto", weights)
    np.testing.assert_allclose(read_infogain(source), weights, rtol=1e-6)


def test_the_loss_enums_exist_in_this_caffe():
    assert P.Loss.NONE == caffe.proto.caffe_pb2.LossParameter.NONE


# --- the loss layers' rules, one claim each (the mutation pass of issue 35) --------------
def test_one_hot_refuses_every_value_that_is_neither_a_class_nor_void_and_lists_them():
    bad = [-1.5, -1, 2.75, 3, 300, 4, 5, 6, 7]  # nine: the message lists the first eight
    label = np.array([[[[0, 1, 2, 255, *bad]]]], np.float32)
    with pytest.raises(LossLayerError) as error:
        one_hot(label, 3)
    assert str(error.value) == ("OneHotLayer: label values [-1.5, -1, 2.75, 3, 4, 5, 6, 7] "
                                "are neither a class 0..2 nor 255 (void)")
    for value in [*bad, 1.25]:  # each alone is refused too (1.25 rounds down)
        with pytest.raises(LossLayerError):
            one_hot(np.array([[[[1, value]]]], np.float32), 3)


def test_one_hot_by_default_has_one_channel_per_class_from_class_0():
    label = np.array([[[[0, 1, 2, 255]]]], np.float32)
    out = one_hot(label, 3)
    assert out.shape == (1, 3, 1, 4)
    np.testing.assert_array_equal(out[0, :, 0, :3], np.eye(3))
    assert (out[0, :, 0, 3] == 255).all()


@pytest.mark.parametrize("shape", [(70, 33), (64, 96)])
def test_cell_mask_is_one_draw_per_cell_expanded(shape):
    """The mask is rng.random((⌈h/cell⌉, ⌈w/cell⌉)) < p, each draw over its cell, and
    draws nothing more (the next example's draws follow on)."""
    rng, reference = np.random.default_rng(0), np.random.default_rng(0)
    keep = cell_mask(shape, 32, 0.5, rng)
    draws = reference.random((-(-shape[0] // 32), -(-shape[1] // 32))) < 0.5
    np.testing.assert_array_equal(
        keep, np.repeat(np.repeat(draws, 32, 0), 32, 1)[:shape[0], :shape[1]])
    assert rng.random() == reference.random()


def sampling_net(tmp_path, param_str, bottoms=1, tops=1, batch=1, name="n"):
    n = caffe.NetSpec()
    labels = [L.Input(shape=dict(dim=[batch, 1, H, W])) for _ in range(bottoms)]
    for i, label in enumerate(labels):
        n[f"label{i}"] = label
    outs = L.Python(*labels, module="loss_layers", layer="LossSamplingLayer",
                    param_str=param_str, ntop=tops)
    for i, top in enumerate([outs] if tops == 1 else outs):
        n[f"kept{i}"] = top
    path = tmp_path / f"{name}.prototxt"
    path.write_text(str(n.to_proto()))
    return caffe.Net(str(path), caffe.TRAIN)


@pytest.mark.parametrize("param_str", ["{'p': 0, 'seed': 1}", "{'p': -0.5, 'seed': 1}",
                                       "{'p': 1.5, 'seed': 1}",
                                       "{'p': 0.5, 'seed': 1, 'cell': 0}",
                                       "{'p': 0.5, 'seed': -1}", "{'p': 0.5, 'seed': 1.5}"])
def test_loss_sampling_refuses_a_p_cell_or_seed_out_of_range(tmp_path, param_str):
    with pytest.raises(LossLayerError, match="LossSamplingLayer: (p must|cell must)"):
        sampling_net(tmp_path, param_str)


def test_loss_sampling_accepts_the_smallest_cell_and_seed(tmp_path):
    net = sampling_net(tmp_path, "{'p': 0.5, 'seed': 0, 'cell': 1}")
    net.blobs["label0"].data[...] = 1
    net.forward()
    kept = net.blobs["kept0"].data
    assert (kept == 1).any() and (kept == 255).any()


@pytest.mark.parametrize("bottoms,tops", [(2, 1), (1, 2), (0, 1)])
def test_loss_sampling_takes_one_bottom_and_one_top(tmp_path, bottoms, tops):
    with pytest.raises(LossLayerError, match="one label bottom and gives one top"):
        sampling_net(tmp_path, "{'p': 0.5, 'seed': 1}", bottoms, tops)


def test_loss_sampling_draws_each_example_of_a_batch_with_key_seed_and_forward(tmp_path):
    """Cells of 32 by default; the n-th forward's masks come from default_rng([seed, n]),
    one per example of the batch, in order."""
    net = sampling_net(tmp_path, "{'p': 0.5, 'seed': 9}", batch=2)
    for forward in range(2):
        net.blobs["label0"].data[...] = 1
        net.forward()
        rng = np.random.default_rng([9, forward])
        for example in range(2):
            expected = np.where(cell_mask((H, W), 32, 0.5, rng), 1, 255)
            np.testing.assert_array_equal(net.blobs["kept0"].data[example, 0], expected)
