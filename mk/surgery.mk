# ImageNet classifiers → FCN base weights in $(WEIGHTS_DIR) (surgery/fetch.py).
WEIGHTS_DIR ?= ilsvrc-nets
.PHONY: vgg16-fcn alexnet-fcn googlenet-fcn
vgg16-fcn: $(WEIGHTS_DIR)/vgg16-fcn.caffemodel
alexnet-fcn: $(WEIGHTS_DIR)/alexnet-fcn.caffemodel
googlenet-fcn: $(WEIGHTS_DIR)/googlenet-fcn.caffemodel

$(WEIGHTS_DIR)/vgg16-fcn.caffemodel: | setup
	@GLOG_minloglevel=2 $(PY) -m surgery.fetch vgg16 --dir $(WEIGHTS_DIR)
$(WEIGHTS_DIR)/alexnet-fcn.caffemodel: | setup
	@GLOG_minloglevel=2 $(PY) -m surgery.fetch caffenet --dir $(WEIGHTS_DIR)
$(WEIGHTS_DIR)/googlenet-fcn.caffemodel: | setup
	@GLOG_minloglevel=2 $(PY) -m surgery.fetch googlenet --dir $(WEIGHTS_DIR)
