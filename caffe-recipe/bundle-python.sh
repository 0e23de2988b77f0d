#!/bin/sh
# The GPU bundle's Python (bin/python of `make gpu-bundle`; caffe-recipe/CUDA.md): the
# bundle's own interpreter and packages, the working tree on the path, and, for a CUDA
# build, the folders that hold cudart, cuBLAS and cuRAND on this machine, found here:
#   $FCN_CUDA_LIBS (folders, ':'-separated), then NVIDIA's pip packages in any Python's
#   site-packages under /opt, /usr and /usr/local (nvidia/cu13/lib, nvidia/*/lib), then
#   /usr/local/cuda*/lib64 and targets/x86_64-linux/lib, then the loader's cache.
# When one is missing it names it, where it looked and the fix, and exits 3.
# FCN_REPO: the working tree (default: the current folder).
set -eu
here=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
py=$(ls "$here"/bin/python3.* | head -n 1)

# The oldest glibc it runs on (MANIFEST.json's needs, measured by gpu_bundle.py).
need=$(sed -n 's/^ *"GLIBC": "\([0-9.]*\)".*/\1/p' "$here/MANIFEST.json")
have=$(getconf GNU_LIBC_VERSION 2>/dev/null | sed 's/^glibc //')
if [ -n "$need" ] && [ -n "$have" ] && \
   [ "$(printf '%s\n%s\n' "$need" "$have" | sort -t. -k1,1n -k2,2n | head -n 1)" != "$need" ]; then
  echo "fcn-caffe bundle: error: this bundle needs glibc $need or newer; this machine has" \
       "$have. Make the bundle on a system as old as this one (make gpu-bundle there)." >&2
  exit 3
fi

if grep -q '"flavour": "cuda"' "$here/MANIFEST.json"; then
  dirs=""
  candidates() {
    printf '%s\n' $(printf '%s' "${FCN_CUDA_LIBS:-}" | tr ':' ' ')
    for site in /opt/*/.venv/lib/python3*/site-packages /opt/*/lib/python3*/site-packages \
                /usr/local/lib/python3*/dist-packages /usr/local/lib/python3*/site-packages \
                /usr/lib/python3/dist-packages; do
      for d in "$site"/nvidia/cu13/lib "$site"/nvidia/*/lib; do printf '%s\n' "$d"; done
    done
    for d in /usr/local/cuda*/lib64 /usr/local/cuda*/targets/x86_64-linux/lib; do
      printf '%s\n' "$d"
    done
  }
  missing=""
  for lib in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcurand.so.10; do
    found=""
    for d in $(candidates); do
      if [ -e "$d/$lib" ]; then found=$d; break; fi
    done
    if [ -z "$found" ] && command -v ldconfig >/dev/null 2>&1; then
      found=$(ldconfig -p 2>/dev/null | sed -n "s|.*$lib .*=> \(.*\)/$lib\$|\1|p" | head -n 1)
    fi
    if [ -z "$found" ]; then
      missing="$missing $lib"
    else
      case ":$dirs:" in *":$found:"*) ;; *) dirs="${dirs:+$dirs:}$found" ;; esac
    fi
  done
  if [ -n "$missing" ]; then
    echo "fcn-caffe bundle: error: this CUDA build of Caffe needs$missing, found in none of:" \
         "\$FCN_CUDA_LIBS, nvidia/*/lib of the Pythons under /opt, /usr/local and /usr," \
         "/usr/local/cuda*/lib64, the loader's cache. Install NVIDIA's CUDA 13 pip packages" \
         "(nvidia-cuda-runtime, nvidia-cublas, nvidia-curand) or the CUDA 13 toolkit, or set" \
         "FCN_CUDA_LIBS to the folders that hold them." >&2
    exit 3
  fi
  LD_LIBRARY_PATH="$dirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export LD_LIBRARY_PATH FCN_CUDA_LIB_DIRS="$dirs"
fi

PYTHONHOME=$here
repo=${FCN_REPO:-$(pwd)}
PYTHONPATH="$repo:$repo/layers"  # the venv's fcn-project.pth (Makefile, project-path)
PYTHONNOUSERSITE=1
FCN_BUNDLE=$here
export PYTHONHOME PYTHONPATH PYTHONNOUSERSITE FCN_BUNDLE
exec "$py" "$@"
