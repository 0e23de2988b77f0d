# Sourced by build.sh when CUDA=1 (not run on its own): find the CUDA toolkit and the
# cuBLAS/cuRAND (and, for NCCL=1, NCCL) libraries and add the GPU flags to build.sh's
# `cmake_flags`. caffe-recipe/CUDA.md explains each choice.
#
# nvcc comes from CUDA_HOME (default /usr/local/cuda). cuBLAS and cuRAND come from the
# toolkit when it has them, else from NVIDIA's Python wheels installed (pinned, matching
# CUDA 13.0) into the cache beside the builds. CUDA_ARCH picks exactly one architecture,
# which this nvcc must list (CUDA 13 compiles sm_75 and newer; 90 = Hopper, H100/H200).
# Uses from build.sh: CUDA_ARCH, CUDNN, NCCL, cache_root, python, die, say.
# shellcheck shell=bash

CUDA_WHEELS_13=("nvidia-cublas==13.0.2.14" "nvidia-curand==10.4.0.35")
NCCL_WHEEL_13="nvidia-nccl-cu13==2.28.3"

_cuda_wheels() {  # install pinned wheels once into $cache_root/<name>-<hash of pins>; print that dir
  local name=$1; shift
  local dir
  dir="$cache_root/$name-$(printf '%s\n' "$@" | sha256sum | cut -c1-12)"
  if [ ! -f "$dir/.complete" ]; then
    say "installing NVIDIA library wheels ($*) into $dir"
    rm -rf "$dir"
    "$python" -m pip install -q --disable-pip-version-check --no-deps --target "$dir" "$@" >&2 \
      || die "pip could not install $*; install the CUDA toolkit's libraries instead and set CUDA_HOME"
    touch "$dir/.complete"
  fi
  echo "$dir"
}

_unversioned_links() {  # CMake's find_library wants libX.so; the wheels ship only libX.so.N
  local lib
  for lib in "$1"/lib*.so.*; do
    [ -e "$lib" ] || continue
    ln -sf "$(basename "$lib")" "${lib%%.so.*}.so"
  done
}

cuda_cmake_flags() {
  local cuda_home=${CUDA_HOME:-/usr/local/cuda}
  local nvcc="$cuda_home/bin/nvcc"
  [ -x "$nvcc" ] || die "CUDA=1 but there is no nvcc at $nvcc; install the CUDA toolkit or set CUDA_HOME"
  local version major
  version=$("$nvcc" --version | sed -nE 's/.*release ([0-9]+\.[0-9]+).*/\1/p')
  major=${version%%.*}
  [ -n "$major" ] || die "cannot read the CUDA version from '$nvcc --version'"

  [[ "$CUDA_ARCH" =~ ^[0-9]+$ ]] || die "CUDA_ARCH must be one compute capability without the dot (90 for H100), not '$CUDA_ARCH'"
  local known
  known=$("$nvcc" --list-gpu-code 2>/dev/null | tr '\n' ' ') || known=""
  if [ -n "$known" ] && [[ " $known " != *" sm_$CUDA_ARCH "* ]]; then
    die "CUDA $version cannot compile for sm_$CUDA_ARCH; this nvcc supports: $known(CUDA 13 dropped everything before sm_75)"
  fi

  if [ "$CUDNN" = 1 ]; then
    die "CUDNN=1: BVLC Caffe's cuDNN layers call cudnnGetConvolution*Algorithm with the *_SPECIFY_WORKSPACE_LIMIT preferences, which cuDNN 8 removed (only cuDNN <= 7 builds, and no cuDNN 7 exists for CUDA 13). Build with CUDNN=0: Caffe's own CUDA kernels (see caffe-recipe/CUDA.md)"
  fi

  local inc lib
  if [ -f "$cuda_home/include/cublas_v2.h" ] && [ -e "$cuda_home/lib64/libcublas.so" ] \
     && [ -e "$cuda_home/lib64/libcurand.so" ]; then
    inc="$cuda_home/include" lib="$cuda_home/lib64"
  else
    [ "$major" = 13 ] || die "the CUDA $version toolkit at $cuda_home has no cuBLAS/cuRAND, and only CUDA 13's wheels are pinned here; install cuBLAS and cuRAND with the toolkit"
    local wheels
    wheels=$(_cuda_wheels nvidia-cu13 "${CUDA_WHEELS_13[@]}") || exit 1
    inc="$wheels/nvidia/cu13/include" lib="$wheels/nvidia/cu13/lib"
    _unversioned_links "$lib"
  fi
  [ -f "$inc/cublas_v2.h" ] || die "no cublas_v2.h in $inc"
  [ -e "$lib/libcublas.so" ] || die "no libcublas.so in $lib"
  [ -e "$lib/libcurand.so" ] || die "no libcurand.so in $lib"

  # CUDA 13 gives the host stubs of __global__ templates internal linkage and every kernel
  # hidden visibility by default; Caffe's test_im2col_kernel.cu launches libcaffe's im2col
  # kernels from its own translation unit and no longer links. Restore what every earlier
  # CUDA did: weak, visible stubs (no Caffe kernel template is defined in two translation
  # units, and libcaffe and its users share one shared libcudart, the cases nvcc warns about).
  local nvcc_flags="-I$inc" nvcc_help switch
  nvcc_help=$("$nvcc" --help 2>/dev/null) || nvcc_help=""
  for switch in static-global-template-stub device-entity-has-hidden-visibility; do
    if [[ "$nvcc_help" == *"$switch"* ]]; then nvcc_flags+=";-$switch=false"; fi
  done

  cmake_flags+=(
    -DCPU_ONLY=OFF
    -DCUDA_TOOLKIT_ROOT_DIR="$cuda_home"
    -DCUDA_ARCH_NAME=Manual -DCUDA_ARCH_BIN="$CUDA_ARCH" -DCUDA_ARCH_PTX="$CUDA_ARCH"
    # FindCUDA drops these two cache entries on a first configure and searches again, so the
    # search paths below are what actually finds the wheels' libraries.
    -DCUDA_cublas_LIBRARY="$lib/libcublas.so" -DCUDA_curand_LIBRARY="$lib/libcurand.so"
    -DCMAKE_LIBRARY_PATH="$lib" -DCMAKE_INCLUDE_PATH="$inc"
    -DCMAKE_CXX_FLAGS="-I$inc" -DCUDA_NVCC_FLAGS="$nvcc_flags"
    -DUSE_CUDNN=OFF
  )
  local rpath=$lib  # the wheels' libraries sit outside the loader's paths

  if [ "$NCCL" = 1 ]; then
    local nccl_inc nccl_lib
    if [ -n "${NCCL_DIR:-}" ]; then
      nccl_inc="$NCCL_DIR/include" nccl_lib="$NCCL_DIR/lib"
    else
      local nccl_wheels
      nccl_wheels=$(_cuda_wheels nvidia-nccl "$NCCL_WHEEL_13") || exit 1
      nccl_inc="$nccl_wheels/nvidia/nccl/include" nccl_lib="$nccl_wheels/nvidia/nccl/lib"
      _unversioned_links "$nccl_lib"
    fi
    [ -f "$nccl_inc/nccl.h" ] && [ -e "$nccl_lib/libnccl.so" ] \
      || die "NCCL=1 but there is no nccl.h in $nccl_inc or no libnccl.so in $nccl_lib"
    cmake_flags+=(-DUSE_NCCL=ON -DNCCL_INCLUDE_DIR="$nccl_inc" -DNCCL_LIBRARIES="$nccl_lib/libnccl.so")
    rpath="$rpath;$nccl_lib"
  else
    cmake_flags+=(-DUSE_NCCL=OFF)
  fi
  cmake_flags+=(-DCMAKE_BUILD_RPATH="$rpath")
}
