# Exports (export/; see export/README.md): an experiment's deploy net and weights as ONNX or
# as a PyTorch module, each verified against Caffe's forward pass (fails above tolerance).
#   make onnx  NET=voc-fcn8s WEIGHTS=file.caffemodel [OUT=file.onnx] [WIDTH=1.0] [SIZES=1x1,…]
#   make torch NET=voc-fcn8s WEIGHTS=file.caffemodel [OUT=folder]    [WIDTH=1.0] [IMAGE=pic.jpg]
.PHONY: onnx torch export-deps

EXPORT_STAMP := $(VENV)/.export-requirements-installed
EXPORT_FLAGS = --net $(call q,$(NET)) --weights $(call q,$(WEIGHTS)) $(if $(OUT),--out $(call q,$(OUT))) \
  $(if $(WIDTH),--width=$(call q,$(WIDTH))) $(if $(SIZES),--sizes $(call q,$(SIZES))) \
  $(if $(IMAGE),--image $(call q,$(IMAGE)))
EXPORT_USAGE = NET=experiment WEIGHTS=file.caffemodel [OUT=…] [WIDTH=1.0] [SIZES=1x1,37x501,…] [IMAGE=picture]

export-deps: $(EXPORT_STAMP)

$(EXPORT_STAMP): export/requirements.txt requirements.txt $(VENV)/.requirements-installed
	@echo "setup: installing the exports' pinned packages (export/requirements.txt)"
	@$(PY) -m pip install -q --disable-pip-version-check -r export/requirements.txt -c requirements.txt
	@touch $@

onnx: built export-deps
	@test -n "$(NET)" && test -n "$(WEIGHTS)" || { echo "usage: make onnx $(EXPORT_USAGE)"; exit 2; }
	@$(PY) -m export.onnx_export $(EXPORT_FLAGS)

# PyTorch CPU is the bench's peer already (mk/bench.mk pins and installs it).
torch: built bench-torch
	@test -n "$(NET)" && test -n "$(WEIGHTS)" || { echo "usage: make torch $(EXPORT_USAGE)"; exit 2; }
	@$(PY) -m export.torch_export $(EXPORT_FLAGS)

# The export tests run onnxruntime and PyTorch beside Caffe.
test: export-deps bench-torch
