# Sourced by build.sh when CUDA=1 (not run on its own): find the CUDA toolkit and the
# cuBLAS/cuRAND libraries and add the GPU flags to build.sh's `cmake_flags`.
#
# nvcc comes from CUDA_HOME (default /usr/local/cuda). cuBLAS and cuRAND come from the
# toolkit when it has them, else from NVIDIA's Python wheels installed (pinned, matching
# CUDA 13.0) into the cache beside the builds. CUDA 13 compiles only sm_75 and newer:
# CUDA_ARCH picks exactly one architecture (90 = Hopper, H100/H200).
# shellcheck shell=bash

CUDA_WHEELS_13=("nvidia-cublas==13.0.2.14" "nvidia-curand==10.4.0.35")
CUDNN_WHEEL_13="nvidia-cudnn-cu13==9.13.1.26"
NCCL_WHEEL_13="nvidia-nccl-cu13==2.28.3"

_cuda_wheels() {  # install pinned wheels once into $1; print nothing
  local dir=$1; shift
  [ -f "$dir/.complete" ] && return 0
  say "installing NVIDIA library wheels ($*) into $dir"
  rm -rf "$dir"
  "$python" -m pip install -q --disable-pip-version-check --no-deps --target "$dir" "$@" \
    || die "pip could not install $*; install cuBLAS/cuRAND with the CUDA toolkit instead"
  touch "$dir/.complete"
}

_unversioned_links() {  # CMake's find_library wants libX.so; the wheels ship libX.so.N
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
  if [ "$major" -ge 13 ] && [ "$CUDA_ARCH" -lt 75 ]; then
    die "CUDA $version cannot compile for sm_$CUDA_ARCH (CUDA 13 supports sm_75 and newer)"
  fi

  local inc lib
  if [ -f "$cuda_home/include/cublas_v2.h" ] && [ -e "$cuda_home/lib64/libcublas.so" ] \
     && [ -e "$cuda_home/lib64/libcurand.so" ]; then
    inc="$cuda_home/include" lib="$cuda_home/lib64"
  else
    [ "$major" = 13 ] || die "the toolkit at $cuda_home has no cuBLAS/cuRAND and only CUDA 13's wheels are pinned here; install them with the toolkit"
    local wanted=("${CUDA_WHEELS_13[@]}") wheels
    if [ "$CUDNN" = 1 ]; then wanted+=("$CUDNN_WHEEL_13"); fi
    if [ "$NCCL" = 1 ]; then wanted+=("$NCCL_WHEEL_13"); fi
    wheels="$cache_root/nvidia-cu13-$(printf '%s\n' "${wanted[@]}" | sha256sum | cut -c1-12)"
    _cuda_wheels "$wheels" "${wanted[@]}"
    inc="$wheels/nvidia/cu13/include" lib="$wheels/nvidia/cu13/lib"
    _unversioned_links "$lib"
  fi
  [ -e "$lib/libcublas.so" ] || die "no libcublas.so in $lib"
  [ -e "$lib/libcurand.so" ] || die "no libcurand.so in $lib"

  cmake_flags+=(
    -DCPU_ONLY=OFF
    -DCUDA_TOOLKIT_ROOT_DIR="$cuda_home"
    -DCUDA_ARCH_NAME=Manual -DCUDA_ARCH_BIN="$CUDA_ARCH" -DCUDA_ARCH_PTX="$CUDA_ARCH"
    -DCUDA_cublas_LIBRARY="$lib/libcublas.so" -DCUDA_curand_LIBRARY="$lib/libcurand.so"
    -DCMAKE_CXX_FLAGS="-I$inc" -DCUDA_NVCC_FLAGS="-I$inc"
    -DCMAKE_BUILD_RPATH="$lib" -DCMAKE_LIBRARY_PATH="$lib" -DCMAKE_INCLUDE_PATH="$inc"
    -DUSE_CUDNN="$([ "$CUDNN" = 1 ] && echo ON || echo OFF)"
    -DUSE_NCCL="$([ "$NCCL" = 1 ] && echo ON || echo OFF)"
  )
  if [ "$CUDNN" = 1 ]; then
    cmake_flags+=(-DCUDNN_INCLUDE="$inc" -DCUDNN_LIBRARY="$lib/libcudnn.so")
  fi
}
