# Benchmark (bench/): `make bench` times the nets against the sgemm bound and the PyTorch
# peer, writes bench/results/<date>.json and .md and prints the table. BENCH_ARGS passes
# options to bench.run (e.g. BENCH_ARGS="--skip levers", or "--width 0.25" for a smoke run).
.PHONY: bench bench-torch bench-engines bench-blas-variants bench-mkl

BENCH_TORCH ?= 2.13.0+cpu
BENCH_ARGS ?=

# The peer is bench-only: installed here, not in requirements.txt.
bench-torch: venv
	@$(PY) -c 'import sys, torch; sys.exit(torch.__version__ != "$(BENCH_TORCH)")' 2>/dev/null \
	  || $(PY) -m pip install -q --disable-pip-version-check "torch==$(BENCH_TORCH)"

# The inference peers on the project's ONNX export (bench/engines.py): onnxruntime comes with
# the exports (export-deps), OpenVINO from bench/requirements.txt.
BENCH_STAMP := $(VENV)/.bench-requirements-installed

bench-engines: export-deps $(BENCH_STAMP)

$(BENCH_STAMP): bench/requirements.txt requirements.txt $(VENV)/.requirements-installed
	@echo "setup: installing the bench's inference peers (bench/requirements.txt)"
	@$(PY) -m pip install -q --disable-pip-version-check -r bench/requirements.txt -c requirements.txt
	@touch $@

# Other BLAS builds for the levers, unpacked privately (never installed); optional.
bench-blas-variants:
	@bash bench/blas_variants.sh || echo "bench: continuing without the BLAS-variant levers"

# Intel MKL for the MKL levers, unpacked privately from its wheel (bench/mkl.sh); optional.
bench-mkl: venv
	@bash bench/mkl.sh $(PY) || echo "bench: continuing without the MKL levers"

bench: setup bench-torch bench-engines bench-blas-variants bench-mkl bench-openblas-unpatched
	@$(PY) -m bench.run $(BENCH_ARGS)

# The bench tests compare the peers with Caffe, and the thread rows with the OpenBLAS before
# its invariance patch, so the test suite needs them too.
test: bench-torch bench-engines bench-openblas-unpatched

# The pinned OpenBLAS without caffe-recipe/patches/openblas/ (the thread-count invariance),
# its own cache entry (~1.5 min once), for bench.threads' "before invariance" row.
.PHONY: bench-openblas-unpatched
bench-openblas-unpatched: venv
	@$(PY) -c 'from bench.builds import build_unpatched_blas; build_unpatched_blas()' \
	  || echo "bench: continuing without the before-invariance row"

# The same recipe without the speed/memory patches (0002–0004), as its own cache entry, for
# side-by-side comparison in `make bench` and tests/test_caffe_patches.py (bench/builds.py).
.PHONY: caffe-unpatched
caffe-unpatched: venv
	@$(PY) -c 'from bench.builds import build_unpatched; print(build_unpatched())'
