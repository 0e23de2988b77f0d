# GPU build check (caffe-recipe/CUDA.md): compile and link Caffe with CUDA for CUDA_ARCH on a
# machine without a GPU, leaving the venv's pycaffe on the CPU build. `make caffe CUDA=1`
# builds the same entry and switches the venv to it; `make caffe` switches back.
.PHONY: caffe-cuda-check

caffe-cuda-check: venv
	@CUDA=1 bash caffe-recipe/build.sh --venv $(VENV) --no-expose
	@$(PY) caffe-recipe/cuda_check.py --arch $(CUDA_ARCH) \
	  "$$(CUDA=1 bash caffe-recipe/build.sh --venv $(VENV) --print-dir)"

# One prepared GPU check (bench/gpu_check.py): on a machine with an NVIDIA GPU, build or reuse
# the CUDA build for its architecture, run Caffe's GPU tests, compare FCN-8s GPU vs CPU and
# time it against the paper's ~100 ms; without a GPU it says so and exits 0.
.PHONY: gpu-check
gpu-check: venv
	@GLOG_minloglevel=2 $(PY) -m bench.gpu_check --venv $(VENV)
