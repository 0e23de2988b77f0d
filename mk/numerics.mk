# Numerics (caffe-recipe/NUMERICS.md). Caffe links the pinned OpenBLAS (Haswell kernels on
# every AVX2+FMA machine): the same bits everywhere. NUMERICS=native runs any target on the
# system's OpenBLAS instead (kernels auto-detected for this CPU: faster on some CPUs, bits
# that depend on the machine); every run's fingerprint records which one ran.
#   make numerics                      print this machine's fingerprint (BLAS checked first)
#   make demo NUMERICS=native          the opt-out, for speed
.PHONY: numerics

ifeq ($(NUMERICS),native)
NATIVE_BLAS := $(shell cat $(VENV)/caffe-root 2>/dev/null)/blas-native
export LD_LIBRARY_PATH := $(NATIVE_BLAS)$(if $(LD_LIBRARY_PATH),:$(LD_LIBRARY_PATH))
export NUMERICS
endif

numerics: setup
	@$(if $(filter native,$(NUMERICS)),test -d "$(NATIVE_BLAS)" || { echo "numerics: NUMERICS=native needs the system's libopenblas.so.0 (none was found when Caffe was built)"; exit 2; };) \
	GLOG_minloglevel=2 $(PY) -m core.fingerprint $(if $(JSON),--json)
