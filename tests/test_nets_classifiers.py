"""The ImageNet VGG16 classifier surgery starts from: deploy and training forms load in pycaffe."""

import caffe
from caffe import layers as L

from nets.classifiers import vgg16_classifier

VGG16_LEARNED = ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3",
                 "conv4_1", "conv4_2", "conv4_3", "conv5_1", "conv5_2", "conv5_3",
                 "fc6", "fc7", "fc8"]


def _load(tmp_path, net_param, phase):
    path = tmp_path / "net.prototxt"
    path.write_text(str(net_param))
    return caffe.Net(str(path), phase)


def test_deploy_form_has_the_model_zoo_names_and_shapes(tmp_path):
    net = _load(tmp_path, vgg16_classifier(width=0.0625, num_classes=7, size=64), caffe.TEST)
    assert list(net.params) == VGG16_LEARNED
    assert net.params["fc6"][0].data.shape == (256, 32 * 2 * 2)  # 4096/16 from pool5: 512/16 × 2×2
    net.forward()
    assert net.blobs["prob"].data.shape == (1, 7)


def test_training_form_ends_in_a_loss_and_scores_accuracy_only_when_testing(tmp_path):
    def data():
        return L.Input(ntop=2, shape=[dict(dim=[2, 3, 32, 32]), dict(dim=[2])])

    spec = vgg16_classifier(width=0.0625, num_classes=5, size=32, data=data)
    train = _load(tmp_path, spec, caffe.TRAIN)
    test = _load(tmp_path, spec, caffe.TEST)
    assert "loss" in train.blobs and "accuracy" not in train.blobs
    assert "accuracy" in test.blobs
    test.blobs["label"].data[...] = [1, 3]
    assert test.forward()["loss"] > 0
