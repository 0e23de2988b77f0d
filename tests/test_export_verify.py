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
