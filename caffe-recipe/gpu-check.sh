#!/bin/sh
# `make gpu-check` (caffe-recipe/CUDA.md): on the GPU machine, with nothing but the working
# tree and the bundle `make gpu-bundle` made. No package manager, no pip, no network: it
# unpacks gpu-bundle/$GPU_BUNDLE.tar.xz once (checked against its .sha256) if the folder is
# not there, then runs bench/gpu_check.py with the bundle's Python. Needs only sh, tar, and
# xz or a python3 to read the archive. Results: $OUT, else bench/results/gpu-check.
set -eu
repo=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
dir=${GPU_BUNDLE_DIR:-$repo/gpu-bundle}
name=${GPU_BUNDLE:-fcn-caffe-cuda90}
bundle=$dir/$name
archive=$dir/$name.tar.xz
die() { echo "gpu-check: error: $*" >&2; exit 2; }

if [ ! -f "$bundle/.unpacked" ]; then
  [ -f "$archive" ] || die "no bundle: neither $bundle nor $archive exists. Make it on the CPU machine (make gpu-bundle) and carry gpu-bundle/$name.tar.xz with the working tree"
  if [ -f "$archive.sha256" ] && command -v sha256sum >/dev/null 2>&1; then
    (cd "$dir" && sha256sum -c --status "$name.tar.xz.sha256") \
      || die "$archive does not match $archive.sha256 (cut short or damaged in transit); carry it again"
  fi
  partial=$dir/.$name.unpacking
  rm -rf "$partial" && mkdir -p "$partial"
  echo "gpu-check: unpacking $archive" >&2
  if command -v xz >/dev/null 2>&1; then
    xz -dc "$archive" | tar -xf - -C "$partial"
  elif command -v python3 >/dev/null 2>&1; then
    python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], **(
      {"filter": "data"} if hasattr(tarfile, "data_filter") else {}))' \
      "$archive" "$partial"
  else
    die "cannot read $archive: this machine has neither xz nor python3; unpack it elsewhere (tar -xJf) and carry the folder $bundle"
  fi
  touch "$partial/$name/.unpacked"
  rm -rf "$bundle"
  mv "$partial/$name" "$bundle"
  rm -rf "$partial"
fi
cd "$repo"
exec "$bundle/bin/python" -m bench.gpu_check --bundle "$bundle" "$@"
