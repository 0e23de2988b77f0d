"""The ImageNet-style classifiers FCN starts from, for tests and the miniature pre-training
(training.pretrain): VGG16, CaffeNet (AlexNet) and GoogLeNet named as in the model zoo's
releases, classifier layers as InnerProduct, so surgery.convert turns each into the FCN
base exactly as it does the real one."""

from __future__ import annotations

import caffe
from caffe import layers as L
from caffe import params as P
from caffe.proto import caffe_pb2

from nets.backbones import ALEXNET_CONVS, VGG16_STAGES, channels, googlenet, max_pool


def vgg16_classifier(width: float = 1.0, num_classes: int = 1000, size: int = 224, *,
                     data=None, label=None, batch: int = 1) -> caffe_pb2.NetParameter:
    """VGG16 (configuration D). Deploy form (Input, Softmax 'prob') by default; given
    `data`/`label` NetSpec tops factories (callables n -> tops), a training form ending in
    SoftmaxWithLoss and Accuracy. Convolutions start from MSRA fillers, the classifier
    layers from small Gaussians (as Caffe's reference ImageNet nets), so raw-pixel inputs
    do not start the softmax saturated."""
    n = caffe.NetSpec()
    if data is None:
        n.data = L.Input(shape=dict(dim=[batch, 3, size, size]))
    else:
        n.data, n.label = data()
    top = n.data
    for stage, (nout, depth) in enumerate(VGG16_STAGES, start=1):
        for i in range(1, depth + 1):
            n[f"conv{stage}_{i}"] = conv = L.Convolution(
                top, num_output=channels(nout, width), kernel_size=3, pad=1,
                weight_filler=dict(type="msra"), bias_filler=dict(type="constant"))
            n[f"relu{stage}_{i}"] = top = L.ReLU(conv, in_place=True)
        n[f"pool{stage}"] = top = max_pool(top)
    return _classifier_head(n, top, width, num_classes, data is None)


def _classifier_head(n, top, width: float, num_classes: int, deploy: bool):
    """fc6, fc7 (ReLU, dropout) and fc8 as InnerProduct, then Softmax 'prob' (deploy) or
    SoftmaxWithLoss and Accuracy (training)."""
    for layer in ("6", "7"):
        n[f"fc{layer}"] = fc = L.InnerProduct(top, num_output=channels(4096, width),
                                              weight_filler=dict(type="gaussian", std=0.005),
                                              bias_filler=dict(type="constant"))
        n[f"relu{layer}"] = top = L.ReLU(fc, in_place=True)
        n[f"drop{layer}"] = top = L.Dropout(top, dropout_ratio=0.5, in_place=True)
    n.fc8 = L.InnerProduct(top, num_output=num_classes,
                           weight_filler=dict(type="gaussian", std=0.001),
                           bias_filler=dict(type="constant"))
    if deploy:
        n.prob = L.Softmax(n.fc8)
    else:
        n.loss = L.SoftmaxWithLoss(n.fc8, n.label)
        n.accuracy = L.Accuracy(n.fc8, n.label, include=dict(phase=caffe.TEST))
    return n.to_proto()


def alexnet_classifier(width: float = 1.0, num_classes: int = 1000, size: int = 224, *,
                       data=None, label=None, batch: int = 1) -> caffe_pb2.NetParameter:
    """CaffeNet as the model zoo's bvlc_reference_caffenet names it (conv1 unpadded,
    fc6/fc7/fc8 InnerProduct), so surgery.convert makes alexnet-fcn's base from it as
    `make alexnet-fcn` does; fillers and the two forms as vgg16_classifier."""
    n = caffe.NetSpec()
    if data is None:
        n.data = L.Input(shape=dict(dim=[batch, 3, size, size]))
    else:
        n.data, n.label = data()
    top, inputs = n.data, 3
    for name, nout, ks, stride, pad, group in ALEXNET_CONVS:
        if inputs % group or channels(nout, width) % group:
            raise ValueError(f"AlexNet at width {width:g}: {name} has {inputs} input and "
                             f"{channels(nout, width)} output channels in {group} groups; "
                             f"choose a width that keeps both even (1/16 does)")
        inputs = channels(nout, width)
        index = name[-1]
        n[name] = conv = L.Convolution(
            top, num_output=channels(nout, width), kernel_size=ks, stride=stride,
            pad=0 if name == "conv1" else pad, group=group,
            weight_filler=dict(type="msra"), bias_filler=dict(type="constant"))
        n[f"relu{index}"] = top = L.ReLU(conv, in_place=True)
        if index in "125":
            n[f"pool{index}"] = top = max_pool(top, ks=3, stride=2)
        if index in "12":
            n[f"norm{index}"] = top = L.LRN(top, local_size=5, alpha=1e-4, beta=0.75)
    return _classifier_head(n, top, width, num_classes, data is None)


def googlenet_classifier(width: float = 1.0, num_classes: int = 1000, size: int = 224, *,
                         data=None, label=None, batch: int = 1) -> caffe_pb2.NetParameter:
    """BVLC GoogLeNet's main path (nets.backbones.googlenet, conv1 padded by 3 as BVLC's)
    with its final average pooling 'pool5/7x7_s1' (global, so any picture size works) and
    'loss3/classifier' — the two layers `make googlenet-fcn` drops. No auxiliary heads and no
    dropout before the classifier (the miniature trains a few hundred steps). Convolutions
    start from MSRA fillers, as vgg16_classifier's."""
    n = caffe.NetSpec()
    if data is None:
        n.data = L.Input(shape=dict(dim=[batch, 3, size, size]))
    else:
        n.data, n.label = data()
    top = googlenet(n, n.data, width=width)
    n["pool5/7x7_s1"] = top = L.Pooling(top, pool=P.Pooling.AVE, global_pooling=True)
    n["loss3/classifier"] = scores = L.InnerProduct(
        top, num_output=num_classes, weight_filler=dict(type="gaussian", std=0.001),
        bias_filler=dict(type="constant"))
    if data is None:
        n.prob = L.Softmax(scores)
    else:
        n.loss = L.SoftmaxWithLoss(scores, n.label)
        n.accuracy = L.Accuracy(scores, n.label, include=dict(phase=caffe.TEST))
    net = n.to_proto()
    for layer in net.layer:
        if layer.type == "Convolution":
            conv = layer.convolution_param
            if layer.name == "conv1/7x7_s2":
                conv.pad[:] = [3]                 # BVLC's; the FCN's 100 is surgery's concern
            conv.weight_filler.type, conv.bias_filler.type = "msra", "constant"
    return net


# The miniature pre-training's classifiers by backbone (training.pretrain reads them here).
CLASSIFIERS = {"vgg16": vgg16_classifier, "alexnet": alexnet_classifier,
               "googlenet": googlenet_classifier}
