# Surgery (surgery/): ImageNet classifiers → FCN base weights, and experiments' starting weights.
# Weights live in $(WEIGHTS_DIR) (default ilsvrc-nets/, as the release's solve scripts expect;
# never committed). Put VGG_ILSVRC_16_layers.caffemodel and its deploy prototxt there by hand
# on an offline machine; they are verified, not downloaded again.
WEIGHTS_DIR ?= ilsvrc-nets

.PHONY: vgg16-fcn alexnet-fcn googlenet-fcn start-weights test-surgery
vgg16-fcn: $(WEIGHTS_DIR)/vgg16-fcn.caffemodel
alexnet-fcn: $(WEIGHTS_DIR)/alexnet-fcn.caffemodel
googlenet-fcn: $(WEIGHTS_DIR)/googlenet-fcn.caffemodel

$(WEIGHTS_DIR)/vgg16-fcn.caffemodel: | built
	@$(PY) -m surgery.fetch vgg16 --dir $(WEIGHTS_DIR)
$(WEIGHTS_DIR)/alexnet-fcn.caffemodel: | built
	@$(PY) -m surgery.fetch caffenet --dir $(WEIGHTS_DIR)
$(WEIGHTS_DIR)/googlenet-fcn.caffemodel: | built
	@$(PY) -m surgery.fetch googlenet --dir $(WEIGHTS_DIR)

# make start-weights NET=nets/voc-fcn16s/deploy.prototxt BASE=runs/voc-fcn32s/final.caffemodel \
#   OUT=runs/voc-fcn16s/start.caffemodel MODE=staged   (MODE late-fusion: STREAMS="color=A hha=B")
start-weights: built
	@test -n "$(NET)" && test -n "$(OUT)" || { echo "usage: make start-weights NET=deploy.prototxt OUT=start.caffemodel [BASE=weights] [MODE=fcn|staged|color-d|late-fusion] [STREAMS=\"color=W1 hha=W2\"]"; exit 2; }
	@$(PY) -m surgery.prepare --net $(NET) --out $(OUT) $(if $(BASE),--base $(BASE)) \
	  $(if $(MODE),--mode $(MODE)) $(foreach s,$(STREAMS),--stream $(s))

test-surgery: setup
	@$(PY) -m pytest -q tests/test_surgery_*.py
