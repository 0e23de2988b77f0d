"""The PyTorch peer computes what Caffe computes: FCN-8s, FCN-AlexNet and the loss.

torch is bench-only (`make test` and `make bench` install it through `make bench-torch`),
so without it these tests skip (failing under `make test`), before bench.torch_peer (which
imports torch) is imported.
"""

import pytest

from testkit.optional import require_modules

require_modules("torch")  # the bench peer
import caffe  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from caffe import layers as L  # noqa: E402

from bench.models import deploy_net, fill_weights, random_image  # noqa: E402
from bench.torch_peer import UnsupportedLayer, from_caffe, max_relative_difference  # noqa: E402


@pytest.mark.parametrize("experiment, size", [("voc-fcn8s", (67, 75)),
                                              ("voc-fcn-alexnet", (90, 101))])
def test_peer_matches_caffe_output(tmp_path, experiment, size):
    net, net_param = deploy_net(experiment, size, tmp_path, width=1 / 16)
    fill_weights(net, seed=3)
    image = random_image(size, seed=3)
    expected = net.forward(data=image)["score"].copy()
    assert expected.shape == (1, 21, *size) and np.abs(expected).max() > 0
    with torch.no_grad():
        got = from_caffe(net, net_param).eval()(data=torch.from_numpy(image))["score"].numpy()
    assert max_relative_difference(expected, got) < 1e-5


def test_peer_loss_and_gradient_match_caffe(tmp_path):
    """SoftmaxWithLoss with ignore_label and normalize: false (the release's loss)."""
    n = caffe.NetSpec()
    n.data, n.label = L.Input(shape=[dict(dim=[1, 3, 6, 7]), dict(dim=[1, 1, 6, 7])], ntop=2)
    n.score = L.Convolution(n.data, num_output=4, kernel_size=3, pad=1)
    n.loss = L.SoftmaxWithLoss(n.score, n.label, loss_param=dict(ignore_label=255,
                                                                 normalize=False))
    proto = n.to_proto()
    (tmp_path / "loss.prototxt").write_text(str(proto))
    net = caffe.Net(str(tmp_path / "loss.prototxt"), caffe.TRAIN)
    fill_weights(net, seed=1)
    rng = np.random.default_rng(1)
    data = rng.standard_normal((1, 3, 6, 7)).astype(np.float32)
    label = rng.integers(0, 4, (1, 1, 6, 7)).astype(np.float32)
    label[0, 0, :2] = 255  # void rows do not count
    loss = float(net.forward(data=data, label=label)["loss"])
    net.backward()
    peer = from_caffe(net, proto)
    torch_loss = peer(data=torch.from_numpy(data), label=torch.from_numpy(label))["loss"]
    torch_loss.backward()
    assert torch_loss.item() == pytest.approx(loss, rel=1e-5)
    assert max_relative_difference(net.params["score"][0].diff,
                                   peer.model.score.weight.grad.numpy()) < 1e-5


def test_untranslated_layer_is_refused(tmp_path):
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 3, 4, 4]))
    n.out = L.TanH(n.data)
    with pytest.raises(UnsupportedLayer, match="TanH"):
        from_caffe(type("Net", (), {"params": {}})(), n.to_proto())
