# FCN on real BVLC Caffe. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(if $(CONDA_PREFIX),$(CONDA_PREFIX)/bin/python,python3)
VENV   ?= .venv
# EMULATE_CPU=MODEL: every Python process of a target runs under qemu's user-mode emulator
# as that CPU (qemu-x86_64 -cpu MODEL), the check that results do not depend on the CPU
# model (caffe-recipe/NUMERICS.md); ~60x slower than the host.
PY     := $(if $(EMULATE_CPU),qemu-x86_64 -cpu $(EMULATE_CPU) )$(VENV)/bin/python
# A make value as one shell word, so paths with spaces (DATA="my data") stay whole: 'x'
q = '$(subst ','\'',$(1))'
# Where the data and the runs are: users set DATA= and RUNS=; every target reads DATA_DIR
# and RUNS_DIR, which default to core/defaults.py's folders. DATA itself stays unset by
# default, since `make nets` writes the release's own data root unless DATA is given.
DATA_DIR = $(or $(DATA),datasets)
RUNS_DIR = $(or $(RUNS),runs)
# GPU build knobs (see caffe-recipe/README.md); CPU_ONLY by default.
CUDA ?= 0
CUDA_ARCH ?= 90
CUDNN ?= 0
NCCL ?= 0
export CUDA CUDA_ARCH CUDNN NCCL

.PHONY: help setup system-deps venv project-path caffe built no-venv caffe-test caffe-prune test lint faults

help:
	@echo "make setup       system packages, .venv with pinned deps, Caffe built from source (cached)"
	@echo "make demo        the whole method in miniature on CPU (synthetic data)"
	@echo "make paper [MINI=1|PLAN=1] [TABLES=…]   the paper's tables beside this run's (paper/README.md)"
	@echo "make test        the project's test suite, including Caffe's own suites"
	@echo "make caffe-test  Caffe's own C++ (gtest) and pycaffe unittests against this build"
	@echo "make caffe CUDA=1 [CUDA_ARCH=90]   a GPU build beside the CPU one"
	@echo "make caffe-cuda-check  compile-and-link check of the CUDA build (caffe-recipe/CUDA.md)"
	@echo "make gpu-bundle  the CUDA build, its Python and libraries in one archive for a bare GPU machine"
	@echo "make gpu-bundle-test  that bundle run in a bare Debian root with no network (tests/test_gpu_bundle.py)"
	@echo "make gpu-check   on the GPU machine, from the bundle alone: GPU tests, GPU vs CPU FCN-8s, timing, GPU training"
	@echo "make caffe-unpatched  the recipe without its speed/memory patches, for make bench to compare"
	@echo "make caffe-prune remove cached CPU builds of older recipes"
	@echo "make lint        ruff over the project"
	@echo "make faults      the fault table of docs/faults.md, one line per case with its checked class (real trainings, tiny)"
	@echo "make bench       speed and memory against the sgemm bound and the PyTorch peer"
	@echo "make mutate      mutation testing of the numbers-critical modules (slow; not in CI)"
	@echo "make voc-fcn8s [DATA=… WIDTH=… GPU=0]   train an experiment (every one in mk/experiments.generated)"
	@echo "make vgg16-fcn   convert the model zoo's VGG16 into FCN base weights"
	@echo "make zoo / compare / release-check   model-zoo export and bit-for-bit comparison"
	@echo "make onnx / torch NET=… WEIGHTS=…   export to ONNX / PyTorch, verified against Caffe"

setup: system-deps venv caffe

system-deps:
	@bash caffe-recipe/system-deps.sh

venv: $(VENV)/.requirements-installed

$(VENV)/.requirements-installed: requirements.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 9), "Python >= 3.9 needed, found %s" % sys.version.split()[0]' \
	  || { echo "setup: error: $(PYTHON) is too old; set PYTHON=python3.11"; exit 1; }
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(if $(CONDA_PREFIX),--system-site-packages) $(VENV)
	@echo "setup: installing pinned Python packages into $(VENV)"
	@$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@touch $@

# The project's packages and layers/ (Caffe imports the data layers by top-level name, as
# the release's prototxt name them) on the venv's path, as pycaffe is: a .pth file. Its last
# line sets Caffe's log level (core/defaults.py, quiet_caffe_log) at the start of every
# Python process of the venv, before any `import caffe`, so no target or script sets it.
# Rewritten on every setup (cheap), so a moved clone points at itself.
venv: project-path

project-path: $(VENV)/.requirements-installed
	@$(PY) -c 'import pathlib, sys, sysconfig; root = pathlib.Path(sys.argv[1]); \
	  site = pathlib.Path(sysconfig.get_paths()["purelib"]); \
	  (site / "fcn-project.pth").write_text("%s\n%s\n%s\n" % (root, root / "layers", \
	  "import core.defaults; core.defaults.quiet_caffe_log()"))' "$(CURDIR)"

caffe: venv
	@bash caffe-recipe/cached.sh --venv $(VENV) --build

# The build cache is an input of every command that runs Caffe, a side effect of only setup
# (and test, demo, caffe-*, which depend on it): `built` uses this recipe's finished build as
# it is (caffe-recipe/cached.sh, no lock, so a read-only cache works) or stops with one line
# naming the missing build and `make setup`; it never fetches or compiles.
built: $(if $(wildcard $(VENV)/.requirements-installed),venv,no-venv)
	@bash caffe-recipe/cached.sh --venv $(VENV)

no-venv:
	@echo "make: error: no virtualenv at $(VENV); run 'make setup' first (it makes one and builds Caffe into the cache, once)" >&2; exit 1

# Remove cached builds of older recipes (keeps the one the venv uses).
caffe-prune: caffe
	@keep=$$(cat $(VENV)/caffe-root); for d in $$(dirname $$keep)/caffe-cpu-*; do \
	  [ "$$d" = "$$keep" ] || { echo "removing $$d"; rm -rf "$$d"; }; done

caffe-test: caffe
	@bash caffe-recipe/test.sh --venv $(VENV)

lint: venv
	@$(VENV)/bin/ruff check .

# make test installs every optional part (ONNX, PyTorch, Ray, qemu: the mk/*.mk files add their
# targets), so a test that finds one missing fails here instead of skipping (tests/testkit/optional.py)
test: setup
	@bash caffe-recipe/test.sh --venv $(VENV)
	@FCN_OPTIONAL_PARTS=required $(PY) -m pytest -q tests

# every row of docs/faults.md is a test named as its claim in tests/test_faults_*.py, and
# each declares its class (clear error / correct), which tests/fault_classes.py checks
# against what the case saw: one line per case with the class found, and a failure for any
# case that is silent, lost, trusted-corrupt, an abort or a traceback (each on fresh
# synthetic data it writes itself)
faults: setup
	@$(PY) -m pytest -q -p no:cacheprovider --fault-report $(wildcard tests/test_faults_*.py)

# Each area of the project keeps its targets in its own file.
-include mk/*.mk
