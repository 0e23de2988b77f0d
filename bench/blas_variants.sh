#!/usr/bin/env bash
# BLAS builds to try under Caffe without touching the system: the distribution's OpenMP
# OpenBLAS (same version as the pthread one Caffe links) and BLIS (pthread and OpenMP),
# unpacked from their .deb into a private folder, each as a libopenblas.so.0 that
# LD_LIBRARY_PATH can put in front of the system's. libcaffe calls only cblas_* functions
# (nm -D), which BLIS provides too. Nothing is installed; the alternatives stay as they are.
# Usage: bench/blas_variants.sh [DEST]   (default ~/.cache/fcn-bench/blas)
set -euo pipefail

dest=${1:-$HOME/.cache/fcn-bench/blas}
openblas_version=$(dpkg-query -W -f='${Version}' libopenblas0-pthread 2>/dev/null || true)
[ -n "$openblas_version" ] || { echo "blas-variants: libopenblas0-pthread is not installed" >&2; exit 1; }

packages=("libopenblas0-openmp=$openblas_version" libblis4-pthread libblis4-openmp)
mkdir -p "$dest"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ -e "$dest/.complete" ] && [ "$(cat "$dest/.complete")" = "${packages[*]}" ]; then
  echo "blas-variants: $dest is ready"
  exit 0
fi

(cd "$work" && apt-get download "${packages[@]}" >/dev/null 2>"$work/apt.log") || {
  echo "blas-variants: could not download ${packages[*]} (offline?); the BLAS-variant levers" \
       "will be skipped. $(tail -n 1 "$work/apt.log")" >&2
  exit 1
}
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/root"; done

lib=$work/root/usr/lib/x86_64-linux-gnu
install_variant() {  # name, shared object providing cblas_*
  mkdir -p "$dest/$1"
  cp -L "$2" "$dest/$1/$(basename "$2")"
  ln -sf "$(basename "$2")" "$dest/$1/libopenblas.so.0"
}
install_variant openblas-openmp "$(ls "$lib"/openblas-openmp/libopenblasp-r*.so | head -n 1)"
install_variant blis-pthread "$lib/blis-pthread/libblis.so.4"
install_variant blis-openmp "$lib/blis-openmp/libblis.so.4"
echo "${packages[*]}" > "$dest/.complete"
echo "blas-variants: unpacked into $dest: openblas-openmp blis-pthread blis-openmp"
