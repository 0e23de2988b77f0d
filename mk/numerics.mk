# Numerics (caffe-recipe/NUMERICS.md). Caffe links the pinned OpenBLAS (Haswell kernels on
# every AVX2+FMA machine): the same bits everywhere. NUMERICS=native runs any target on the
# system's OpenBLAS instead (kernels auto-detected for this CPU: faster on some CPUs, bits
# that depend on the machine); every run's fingerprint records which one ran.
#   make numerics                      print this machine's fingerprint (BLAS checked first)
#   make demo NUMERICS=native          the opt-out, for speed
#   make demo DEMO_QUICK=1 EMULATE_CPU=Haswell-v4,model=207   the same run as another CPU (qemu)
.PHONY: numerics

ifeq ($(NUMERICS),native)
NATIVE_BLAS := $(shell cat $(VENV)/caffe-root 2>/dev/null)/blas-native
export LD_LIBRARY_PATH := $(NATIVE_BLAS)$(if $(LD_LIBRARY_PATH),:$(LD_LIBRARY_PATH))
export NUMERICS
endif

# EMULATE_CPU=MODEL (Makefile's PY): the fingerprint records the model as cpu_emulated, since
# /proc/cpuinfo, where cpu_model and cpu_id come from, still describes the host
ifneq ($(EMULATE_CPU),)
ifeq ($(shell command -v qemu-x86_64),)
$(error EMULATE_CPU=$(EMULATE_CPU) needs qemu's user-mode emulator: make numerics-deps (or apt-get install qemu-user))
endif
export FCN_EMULATED_CPU := $(EMULATE_CPU)
endif

numerics: setup
	@$(if $(filter native,$(NUMERICS)),test -d "$(NATIVE_BLAS)" || { echo "numerics: NUMERICS=native needs the system's libopenblas.so.0 (none was found when Caffe was built)"; exit 2; };) \
	$(PY) -m core.fingerprint $(if $(JSON),--json)

# The emulated-CPU tests (tests/test_numerics_other_cpus.py) run the pinned build under qemu's
# user-mode emulator as Intel CPUs this machine is not; `make test` installs it (root) or says how.
.PHONY: numerics-deps
numerics-deps:
	@command -v qemu-x86_64 >/dev/null || { [ "$$(id -u)" = 0 ] \
	  && { apt-get update -qq && apt-get install -y -qq --no-install-recommends qemu-user >/dev/null; } \
	  || echo "numerics-deps: the emulated-CPU tests need qemu-user: apt-get install qemu-user"; }

test: numerics-deps
