# Sourced by build.sh: the pinned OpenBLAS Caffe links by default (see NUMERICS.md).
#
# One kernel set for every machine: OpenBLAS built for TARGET=HASWELL (AVX2 + FMA) with
# DYNAMIC_ARCH off, so the library contains only those kernels and never asks the CPU which to
# use (OPENBLAS_CORETYPE, which only a DYNAMIC_ARCH build reads, changes nothing in it).
# Single and double precision only (Caffe calls cblas_s* and cblas_d*, nothing else: no LAPACK,
# no complex), pthreads, and its own library name, libopenblas_pinned.so.0, so that a process
# that also loads the system's libopenblas.so.0 cannot hand Caffe the other one.
# Two patches (patches/openblas/): 0001 makes its bits independent of the thread count, so every
# core can be used; 0002 adds an AVX-512 twin of the Haswell sgemm kernel with the same bits,
# chosen at load on CPUs that have AVX-512F (OPENBLAS_PINNED_SGEMM=avx2 forces the Haswell
# code; NUMERICS.md). Built into the cache beside Caffe, keyed by its source, flags, patches,
# this file and the compiler.

openblas_make_flags=(
  TARGET=HASWELL DYNAMIC_ARCH=0
  NO_LAPACK=1 NO_LAPACKE=1 NOFORTRAN=1 BUILD_SINGLE=1 BUILD_DOUBLE=1
  USE_THREAD=1 USE_OPENMP=0 NUM_THREADS=64 NO_AFFINITY=1 NO_STATIC=1
  LIBNAMESUFFIX=pinned
)
OPENBLAS_SONAME=libopenblas_pinned.so.0

cpu_runs_pinned_kernels() {  # the Haswell kernels need x86-64 with AVX2 and FMA
  [ "$(uname -m)" = x86_64 ] || return 1
  local flags
  flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null) || return 1
  [[ " $flags " == *" avx2 "* && " $flags " == *" fma "* ]]
}

openblas_entry_dir() {  # the cache folder of this OpenBLAS recipe (compiler included)
  local key
  key=$(
    {
      echo "source=$CAFFE_SOURCE $OPENBLAS_ORIG_SHA256 $OPENBLAS_DEBIAN_SHA256 $OPENBLAS_GIT_TAG"
      printf '%s\n' "${openblas_make_flags[@]}"
      "${CC:-cc}" --version 2>/dev/null | head -n1
      cat "$here/openblas.sh" "$here/patches/openblas/series"
      while read -r p; do [ -n "$p" ] && cat "$here/patches/openblas/$p"; done < "$here/patches/openblas/series"
    } | sha256sum | cut -c1-16
  )
  echo "$cache_root/openblas-haswell-$key"
}

openblas_expected_wait() {  # measured with 2 jobs: 47 s quiet, 193 s at load 6 (Zen 4)
  echo "about $(( (4 + jobs - 1) / jobs )) min on $jobs quiet cores"
}

build_openblas() {  # build (or reuse) the pinned OpenBLAS in $1
  local ob=$1 dl="$cache_root/downloads"
  exec 8>"$ob.lock"
  flock 8   # two Caffe flavours may want it at once: one builds, the other waits
  if [ -f "$ob/.complete" ]; then say "using cached OpenBLAS $ob"; return 0; fi
  rm -rf "$ob"
  mkdir -p "$ob/src" "$dl"
  case "$CAFFE_SOURCE" in
    apt)
      if [ ! -f "$dl/$OPENBLAS_ORIG_TARBALL" ] || [ ! -f "$dl/$OPENBLAS_DEBIAN_TARBALL" ]; then
        fetch_apt "$dl" "$OPENBLAS_DEB_PACKAGE" "$OPENBLAS_DEB_VERSION" "$OPENBLAS_DEB_SUITE"
      fi
      verify "$dl/$OPENBLAS_ORIG_TARBALL" "$OPENBLAS_ORIG_SHA256"
      verify "$dl/$OPENBLAS_DEBIAN_TARBALL" "$OPENBLAS_DEBIAN_SHA256"
      # Upstream's code as Debian repacked it; Debian's patches are not applied (they split
      # BLAS/LAPACK into Debian's alternatives and fix non-x86 ports; none touches x86-64).
      tar -xJf "$dl/$OPENBLAS_ORIG_TARBALL" -C "$ob/src" --strip-components=1 ;;
    git)
      git clone -q --depth 1 --branch "$OPENBLAS_GIT_TAG" "$OPENBLAS_GIT_URL" "$ob/src" \
        || die "git clone of OpenBLAS $OPENBLAS_GIT_TAG failed" ;;
  esac
  local p
  while read -r p; do   # ours: one reason each (patches/openblas/*.patch)
    [ -n "$p" ] || continue
    patch -d "$ob/src" -p1 -s --no-backup-if-mismatch < "$here/patches/openblas/$p" \
      || die "our patch patches/openblas/$p failed to apply; the OpenBLAS source is not what the recipe expects"
  done < "$here/patches/openblas/series"
  say "compiling the pinned OpenBLAS (Haswell kernels and their AVX-512 twin, $jobs jobs: $(openblas_expected_wait); log: $ob/build.log)"
  local start=$SECONDS
  # CFLAGS from the environment (conda sets some) would change the kernels' code: not passed.
  (cd "$ob/src" && env -u CFLAGS -u CPPFLAGS make -j"$jobs" "${openblas_make_flags[@]}" libs shared \
     && env -u CFLAGS -u CPPFLAGS make "${openblas_make_flags[@]}" PREFIX="$ob" install) \
     > "$ob/build.log" 2>&1 || { tail -n 20 "$ob/build.log" >&2; die "OpenBLAS build failed; full log: $ob/build.log"; }
  [ -f "$ob/lib/$OPENBLAS_SONAME" ] || die "the OpenBLAS build did not produce $ob/lib/$OPENBLAS_SONAME; see $ob/build.log"
  {
    echo "source=$CAFFE_SOURCE $OPENBLAS_DEB_PACKAGE $OPENBLAS_DEB_VERSION"
    echo "flags=${openblas_make_flags[*]}"
    echo "compiler=$("${CC:-cc}" --version | head -n1)"
    echo "build_seconds=$((SECONDS - start)) jobs=$jobs"
  } > "$ob/build-info.txt"
  rm -rf "$ob/src"
  touch "$ob/.complete"
}

link_native_blas() {  # $1/blas-native: the system OpenBLAS under the pinned name (NUMERICS=native)
  local dir="$1/blas-native" system
  system=$( { ls "${CONDA_PREFIX:-/nonexistent}/lib/libopenblas.so.0" 2>/dev/null || true
              ldconfig -p 2>/dev/null | awk '/libopenblas\.so\.0 .*x86-64/ {print $NF}'; } | head -n1)
  [ -n "$system" ] || { say "no system libopenblas.so.0: NUMERICS=native will not be available"; return 0; }
  mkdir -p "$dir"
  ln -sfn "$system" "$dir/$OPENBLAS_SONAME"
}
