# GPU build check (caffe-recipe/CUDA.md): compile and link Caffe with CUDA for CUDA_ARCH on a
# machine without a GPU, leaving the venv's pycaffe on the CPU build. `make caffe CUDA=1`
# builds the same entry and switches the venv to it; `make caffe` switches back.
.PHONY: caffe-cuda-check

caffe-cuda-check: venv
	@CUDA=1 bash caffe-recipe/build.sh --venv $(VENV) --no-expose
	@$(PY) caffe-recipe/cuda_check.py --arch $(CUDA_ARCH) \
	  "$$(CUDA=1 bash caffe-recipe/build.sh --venv $(VENV) --print-dir)"

# The GPU bundle (caffe-recipe/CUDA.md, "The GPU bundle"): the CUDA build for CUDA_ARCH with
# its own Python and every library a bare machine lacks, as gpu-bundle/fcn-caffe-cudaNN.tar.xz
# (≤ 60 MiB) to carry to a GPU machine that has no network and no package manager.
.PHONY: gpu-bundle gpu-bundle-deps
gpu-bundle: venv gpu-bundle-deps
	@CUDA=1 bash caffe-recipe/build.sh --venv $(VENV) --no-expose
	@$(PY) caffe-recipe/gpu_bundle.py \
	  --entry "$$(CUDA=1 bash caffe-recipe/build.sh --venv $(VENV) --print-dir)"

# The CUDA bundle in the bare Debian root (tests/test_gpu_bundle.py on it, not the CPU bundle
# CI uses), its CUDA libraries from where the build found them (MANIFEST.json).
.PHONY: gpu-bundle-test
gpu-bundle-test: gpu-bundle
	@FCN_GPU_BUNDLE=gpu-bundle/fcn-caffe-cuda$(CUDA_ARCH) $(PY) -m pytest -q tests/test_gpu_bundle.py

# One prepared GPU check (bench/gpu_check.py), on the GPU machine with the working tree and
# the bundle only: no apt, no pip, no network (tests/test_gpu_bundle.py checks). Caffe's GPU
# tests, FCN-8s GPU vs CPU and its timing, voc-fcn8s trained twice on the GPU; without a
# GPU the CPU half runs and it says "no GPU". Results in $$OUT, else bench/results/gpu-check.
.PHONY: gpu-check
gpu-check:
	@sh caffe-recipe/gpu-check.sh

# patchelf (the bundle's RUNPATHs) and debootstrap (tests/test_gpu_bundle.py's bare Debian
# root); `make test` installs them (root) or says how.
gpu-bundle-deps:
	@command -v patchelf >/dev/null && command -v debootstrap >/dev/null || { [ "$$(id -u)" = 0 ] \
	  && { apt-get update -qq && apt-get install -y -qq --no-install-recommends patchelf \
	       debootstrap >/dev/null; } \
	  || echo "gpu-bundle-deps: the bundle needs patchelf, its test debootstrap: apt-get install patchelf debootstrap"; }

test: gpu-bundle-deps
