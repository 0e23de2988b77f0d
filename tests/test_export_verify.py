"""export.verify's criteria on hand-made score blobs (no exporter needed): the argmax is
taken over the class axis, so an export that swaps two classes' scores fails."""

import numpy as np

from export import verify


def test_argmax_agreement_is_over_the_class_axis():
    rng = np.random.default_rng(0)
    caffe_scores = rng.standard_normal((1, 4, 6, 5)).astype(np.float32)
    swapped = caffe_scores.copy()
    swapped[:, [0, 1]] = caffe_scores[:, [1, 0]]  # classes 0 and 1 trade scores
    [same] = verify.compare((6, 5), {"score": caffe_scores}, {"score": caffe_scores.copy()})
    assert same.argmax_differs == 0 and same.passed()
    [found] = verify.compare((6, 5), {"score": caffe_scores}, {"score": swapped})
    winners = caffe_scores.argmax(axis=1)
    expected = float(np.isin(winners, (0, 1)).mean())  # every pixel won by class 0 or 1
    assert 0 < expected < 1 and found.argmax_differs == expected
    assert not found.passed(rtol=np.inf)  # the argmax criterion alone fails it


def test_max_rel_is_the_largest_error_over_the_blobs_own_scale():
    caffe_scores = np.zeros((1, 2, 2, 2), np.float32)
    caffe_scores[0, 0, 0, 0] = 0.5  # a scale below 1
    other = caffe_scores.copy()
    other[0, 1, 1, 1] = 0.125
    [c] = verify.compare((2, 2), {"score": caffe_scores}, {"score": other})
    assert (c.max_abs, c.max_rel) == (0.125, 0.25)
    [zero] = verify.compare((2, 2), {"z": np.zeros((1, 1, 2, 2))}, {"z": np.zeros((1, 1, 2, 2))})
    assert zero.max_rel == 0.0 and zero.passed()
    [off] = verify.compare((2, 2), {"z": np.zeros((1, 1, 2, 2))}, {"z": np.ones((1, 1, 2, 2))})
    assert off.max_rel == np.inf and not off.passed()


def test_a_missing_or_misshapen_output_fails_naming_both_shapes():
    reference = {"score": np.zeros((1, 3, 4, 4)), "prob": np.zeros((1, 3, 4, 4))}
    found = verify.compare((4, 4), reference, {"score": np.zeros((1, 3, 4, 5))})
    assert [(c.blob, c.other_shape) for c in found] == [("score", (1, 3, 4, 5)),
                                                         ("prob", ())]
    assert verify.failures(found) == ["score at 4×4: shape (1, 3, 4, 5), Caffe's (1, 3, 4, 4)",
                                      "prob at 4×4: shape (), Caffe's (1, 3, 4, 4)"]
    smaller = verify.compare((4, 4), {"s": np.zeros((1, 3, 4, 5))}, {"s": np.zeros((1, 3, 4, 4))})
    assert not smaller[0].passed()


def test_a_blob_without_a_class_axis_has_no_argmax_to_disagree():
    [c] = verify.compare((2, 2), {"loss": np.ones(3)}, {"loss": np.ones(3)})
    assert c.argmax_differs == 0.0 and c.passed()


def test_failures_say_which_limit_each_comparison_broke():
    def comparison(max_rel, differs):
        return verify.Comparison((5, 7), "score", (1, 2, 5, 7), (1, 2, 5, 7), 1.0, max_rel,
                                 differs)
    at_limit = comparison(verify.RTOL, 1 - verify.MIN_ARGMAX_AGREEMENT)
    assert at_limit.passed() and verify.failures([at_limit]) == []
    assert not comparison(2 * verify.RTOL, 0).passed()
    assert verify.failures([at_limit, comparison(2e-5, 0.25)]) == [
        "score at 5×7: max rel 2e-05 > 1e-05",
        "score at 5×7: argmax agrees on 75.0000% of pixels < 99.99%"]
    # at or under the tolerance, only the argmax is over its limit
    for max_rel in (verify.RTOL, verify.RTOL / 2):
        assert verify.failures([comparison(max_rel, 0.5)]) == [
            "score at 5×7: argmax agrees on 50.0000% of pixels < 99.99%"]
    # and over the tolerance with every argmax agreeing, only max rel is
    assert verify.failures([comparison(2e-5, 0.0)]) == ["score at 5×7: max rel 2e-05 > 1e-05"]
    assert verify.failures([comparison(2e-5, 1 - verify.MIN_ARGMAX_AGREEMENT)]) == [
        "score at 5×7: max rel 2e-05 > 1e-05"]  # agreement at its limit is not reported
