#!/usr/bin/env bash
# Intel MKL for the bench's BLAS levers, unpacked privately (never installed): the `mkl`
# wheel's shared objects (the runtime dispatcher, core, GNU-OpenMP and sequential threading,
# the computational kernels) into ~/.cache/fcn-bench/mkl/mkl-VERSION/. bench/levers.py runs
# the unchanged libcaffe on it by naming libmkl_rt as Caffe's BLAS on LD_LIBRARY_PATH.
# Usage: bench/mkl.sh PYTHON [VERSION]   (pip of PYTHON downloads the wheel; ~220 MB)
set -euo pipefail

python=${1:?usage: bench/mkl.sh PYTHON [VERSION]}
version=${2:-2026.2.0}
dest=$HOME/.cache/fcn-bench/mkl/mkl-$version
[ -e "$dest/.complete" ] && { echo "bench-mkl: $dest is ready"; exit 0; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$python" -m pip download -q --disable-pip-version-check --no-deps "mkl==$version" \
  -d "$work" >"$work/pip.log" 2>&1 || {
  echo "bench-mkl: could not download mkl==$version (offline?); the MKL levers will be" \
       "skipped. $(tail -n 1 "$work/pip.log")" >&2
  exit 1
}
mkdir -p "$work/lib"
(cd "$work/lib" && unzip -q -j "$work"/mkl-*.whl '*/lib/libmkl_rt.so.*' '*/lib/libmkl_core.so.*' \
  '*/lib/libmkl_intel_lp64.so.*' '*/lib/libmkl_gnu_thread.so.*' \
  '*/lib/libmkl_sequential.so.*' '*/lib/libmkl_def.so.*' '*/lib/libmkl_mc3.so.*' \
  '*/lib/libmkl_avx*.so.*' '*/lib/libmkl_vml_*.so.*')
rm -rf "$dest"
mkdir -p "$(dirname "$dest")"
mv "$work/lib" "$dest"
echo "mkl==$version" > "$dest/.complete"     # written last: a cut unpack is never used
echo "bench-mkl: unpacked MKL $version into $dest"
