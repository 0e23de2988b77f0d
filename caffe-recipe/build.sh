#!/usr/bin/env bash
# Build BVLC Caffe (libcaffe, pycaffe, the `caffe` tool, the gtest binary) from source into a
# cache directory outside the clone, keyed by a hash of the recipe. A finished entry is
# reused; a half-written one (no .complete marker) is removed and rebuilt.
#
#   caffe-recipe/build.sh --venv .venv            build (or reuse) and expose pycaffe to the venv
#   caffe-recipe/build.sh --venv .venv --print-dir   print the cache entry this recipe maps to
#   caffe-recipe/build.sh --venv .venv --no-expose   build only; leave the venv's pycaffe as it is
#   caffe-recipe/build.sh --venv .venv --configure-only DIR   configure the built entry's source
#                                            again in DIR with $CMAKE (checks another CMake)
#   caffe-recipe/build.sh --venv .venv --blas-only   build (or reuse) only the pinned OpenBLAS;
#                                            print its folder (the bench's variants use it)
#   caffe-recipe/build.sh --venv .venv --with-tests  also Caffe's gtest binary (test.testbin),
#                                            added to a finished entry when it lacks it
#                                            (caffe-recipe/test.sh asks for it)
#
# A CPU build compiles what the harness runs (libcaffe, pycaffe, the tools); the gtest binary,
# about as much code again, only when tests ask for it. GPU builds (CUDA=1) always include it
# (the GPU bundle carries it).
# Environment: CUDA=0|1, CUDA_ARCH=90, CUDNN=0|1, NCCL=0|1 (GPU build, see caffe-recipe/README.md),
# CAFFE_SOURCE=apt|git (default apt), CAFFE_BLAS=pinned|system (default pinned: NUMERICS.md),
# CAFFE_CACHE (default ~/.cache/fcn-caffe), JOBS (default: number of cores), CMAKE (default cmake).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=recipe.env
source "$here/recipe.env"
# shellcheck source=openblas.sh
source "$here/openblas.sh"

die() { echo "caffe-recipe/build.sh: error: $*" >&2; exit 1; }
say() { echo "caffe-recipe/build.sh: $*" >&2; }

venv="" print_dir=0 expose_build=1 configure_dir= blas_only=0 with_tests=0
while [ $# -gt 0 ]; do
  case "$1" in
    --venv) venv=$2; shift 2 ;;
    --print-dir) print_dir=1; shift ;;
    --no-expose) expose_build=0; shift ;;
    --configure-only) configure_dir=$2; shift 2 ;;
    --blas-only) blas_only=1; shift ;;
    --with-tests) with_tests=1; shift ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[ -n "$venv" ] || die "--venv DIR is required (the virtualenv whose python pycaffe links against)"
venv=$(cd "$venv" 2>/dev/null && pwd) || die "no virtualenv at $venv; run 'make setup' first"
python="$venv/bin/python"
[ -x "$python" ] || die "no python at $python; run 'make setup' first"

CUDA=${CUDA:-0} CUDA_ARCH=${CUDA_ARCH:-90} CUDNN=${CUDNN:-0} NCCL=${NCCL:-0}
CAFFE_SOURCE=${CAFFE_SOURCE:-apt}
cache_root=${CAFFE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fcn-caffe}
jobs=${JOBS:-$(nproc)}
CMAKE=${CMAKE:-cmake}
CAFFE_BLAS=${CAFFE_BLAS:-pinned}
case "$CAFFE_BLAS" in pinned|system) ;; *) die "CAFFE_BLAS must be pinned or system, not '$CAFFE_BLAS'" ;; esac
if [ "$CAFFE_BLAS" = pinned ] && ! cpu_runs_pinned_kernels; then
  say "this CPU ($(uname -m)) lacks AVX2 or FMA, which the pinned OpenBLAS kernels need: linking the system OpenBLAS instead. Results will not be bit-identical to the README's; every run's fingerprint records numerics=system (caffe-recipe/NUMERICS.md)"
  CAFFE_BLAS=system
fi

py_version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
numpy_major=$("$python" -c 'import numpy; print(numpy.__version__.split(".")[0])' 2>/dev/null) \
  || die "numpy is not installed in $venv; run 'make setup'"

# CMAKE_POLICY_VERSION_MINIMUM: CMake 4 refuses Caffe's cmake_minimum_required(VERSION 2.8.7)
# ("Compatibility with CMake < 3.5 has been removed"); this lets it configure with the 3.5
# policies. CMake 3.x ignores it (the generated build is the same; see README.md).
cmake_flags=(
  -DCMAKE_POLICY_VERSION_MINIMUM=3.5
  -DCMAKE_BUILD_TYPE=Release
  -DBLAS=Open
  -DBUILD_python=ON -DBUILD_python_layer=ON -Dpython_version="$py_version"
  -DUSE_LMDB=ON -DUSE_LEVELDB=OFF -DUSE_OPENCV=OFF -DUSE_HDF5=ON
  -DBUILD_docs=OFF -DBUILD_matlab=OFF
)
if [ -n "${CONDA_PREFIX:-}" ]; then cmake_flags+=(-DCMAKE_PREFIX_PATH="$CONDA_PREFIX"); fi
openblas_dir=""
if [ "$CAFFE_BLAS" = pinned ]; then
  openblas_dir=$(openblas_entry_dir)
  cmake_flags+=(-DOpenBLAS_INCLUDE_DIR="$openblas_dir/include" -DOpenBLAS_LIB="$openblas_dir/lib/$OPENBLAS_SONAME")
fi
if [ "$CUDA" = 1 ]; then
  # shellcheck source=cuda.sh
  source "$here/cuda.sh"
  cuda_cmake_flags   # appends to cmake_flags; dies with a clear message if CUDA is incomplete
else
  cmake_flags+=(-DCPU_ONLY=ON)
fi

# The recipe: everything that changes the bytes of the build.
recipe_key=$(
  {
    echo "source=$CAFFE_SOURCE $ORIG_SHA256 $DEBIAN_SHA256 $GIT_TREE"
    echo "python=$py_version numpy=$numpy_major"
    printf '%s\n' "${cmake_flags[@]}"
    cat "$here/build.sh" "$here/recipe.env" "$here/openblas.sh" "$here/patches/series"
    while read -r p; do [ -n "$p" ] && cat "$here/patches/$p"; done < "$here/patches/series"
    if [ "$CUDA" = 1 ]; then
      cat "$here/cuda.sh" "$here/patches/cuda/series"
      while read -r p; do [ -n "$p" ] && cat "$here/patches/cuda/$p"; done < "$here/patches/cuda/series"
    fi
  } | sha256sum | cut -c1-16
)
flavour=cpu; [ "$CUDA" = 1 ] && flavour="cuda$CUDA_ARCH"
entry="$cache_root/caffe-$flavour-$recipe_key"
if [ "$print_dir" = 1 ]; then echo "$entry"; exit 0; fi

expose() {
  # pycaffe and the caffe tool, made visible to the venv without copying.
  [ "$expose_build" = 1 ] || return 0
  local site
  site=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  echo "$entry/src/python" > "$site/caffe-from-source.pth"
  ln -sf "$entry/build/tools/caffe" "$venv/bin/caffe"
  echo "$entry" > "$venv/caffe-root"
}

mkdir -p "$cache_root"
exec 9>"$cache_root/.lock-$flavour-$recipe_key"
flock 9   # one builder per entry; a second make waits, then reuses


check_system() {
  local missing=() f
  command -v cmake >/dev/null || missing+=(cmake)
  command -v g++ >/dev/null || missing+=(g++)
  command -v protoc >/dev/null || missing+=(protobuf-compiler)
  command -v patch >/dev/null || missing+=(patch)
  for f in boost/shared_ptr.hpp glog/logging.h gflags/gflags.h hdf5/serial/hdf5.h lmdb.h \
           google/protobuf/message.h; do
    [ -e "/usr/include/$f" ] || [ -e "${CONDA_PREFIX:-/nonexistent}/include/$f" ] || \
    [ -e "${CONDA_PREFIX:-/nonexistent}/include/${f#hdf5/serial/}" ] || missing+=("header $f")
  done
  local pyxy=${py_version/./}
  compgen -G "/usr/lib/*/libboost_python$pyxy.so" >/dev/null || \
    compgen -G "${CONDA_PREFIX:-/nonexistent}/lib/libboost_python$pyxy.so" >/dev/null || \
    missing+=("libboost_python$pyxy (Boost.Python for Python $py_version)")
  if [ ${#missing[@]} -gt 0 ]; then
    die "missing system packages: ${missing[*]}. Fix: run 'make setup' as root (installs caffe-recipe/apt-packages.txt), or install them by hand; Boost.Python must match the venv's Python $py_version"
  fi
}

fetch_apt() {  # dir [package version suite]: default Caffe's source package
  # Debian's source package through a deb-src entry derived from this machine's own mirror,
  # in a private apt state directory: the system's sources are never touched.
  local dl=$1 package=${2:-$DEB_PACKAGE} version=${3:-$DEB_VERSION} suite=${4:-$DEB_SUITE}
  local mirror apt_dir opts
  mirror=$(
    { grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{for(i=2;i<=NF;i++) print $i}'
      grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
        | sed -E 's/\[[^]]*\]//' | awk '{print $2}'
    } | grep -E '/debian/?$' | head -n1
  ) || true
  [ -n "$mirror" ] || die "no Debian mirror in this machine's apt sources; on other systems use CAFFE_SOURCE=git (see caffe-recipe/README.md)"
  apt_dir="$dl/apt-state-$suite"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  [ -f "$keyring" ] || die "missing $keyring; install the debian-archive-keyring package"
  echo "deb-src [signed-by=$keyring] $mirror $suite main" > "$apt_dir/sources.list"
  opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
        -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o "APT::Sandbox::User=root")
  say "fetching Debian source package $package=$version ($suite)"
  apt-get "${opts[@]}" -qq update || die "apt-get update of the private deb-src list failed (mirror $mirror)"
  (cd "$dl" && apt-get "${opts[@]}" -qq source --download-only "$package=$version") \
    || die "apt-get source $package=$version failed"
}

verify() {
  local file=$1 want=$2 got
  got=$(sha256sum "$file" | cut -d' ' -f1)
  [ "$got" = "$want" ] || die "checksum mismatch for $file: expected sha256 $want, got $got. Refusing to build; delete the file to fetch it again"
}

unpack_apt() {
  local dl="$cache_root/downloads"
  mkdir -p "$dl"
  if [ ! -f "$dl/$ORIG_TARBALL" ] || [ ! -f "$dl/$DEBIAN_TARBALL" ]; then fetch_apt "$dl"; fi
  verify "$dl/$ORIG_TARBALL" "$ORIG_SHA256"
  verify "$dl/$DEBIAN_TARBALL" "$DEBIAN_SHA256"
  mkdir -p "$entry/src"
  tar -xzf "$dl/$ORIG_TARBALL" -C "$entry/src"
  tar -xJf "$dl/$DEBIAN_TARBALL" -C "$entry/src"
  local p
  while read -r p; do
    [ -n "$p" ] && [ "${p#\#}" = "$p" ] || continue
    patch -d "$entry/src" -p1 -s --no-backup-if-mismatch < "$entry/src/debian/patches/$p" \
      || die "Debian patch $p failed to apply"
  done < "$entry/src/debian/patches/series"
}

unpack_git() {
  # Untested here (no network to GitHub); kept small on purpose.
  git clone -q "$GIT_URL" "$entry/src" || die "git clone $GIT_URL failed"
  git -C "$entry/src" checkout -q "$GIT_COMMIT" || die "commit $GIT_COMMIT not found"
  local tree
  tree=$(git -C "$entry/src" rev-parse 'HEAD^{tree}')
  [ "$tree" = "$GIT_TREE" ] || die "tree hash mismatch: expected $GIT_TREE, got $tree. Refusing to build"
  # The one Debian change the git route needs: Boost.Python's component is 'pythonXY'.
  sed -i -e 's/"python-py\${boost_py_version}"/"python${boost_py_version}"/' \
         -e 's/Boost_PYTHON-PY\${boost_py_version}_FOUND/Boost_PYTHON${boost_py_version}_FOUND/' \
         -e 's/set(version \${PYTHONLIBS_VERSION_STRING})/set(version ${python_version})/' \
         "$entry/src/cmake/Dependencies.cmake"
}

apply_series() {  # our patches: caffe-recipe/patches/series always, caffe-recipe/patches/cuda/series for CUDA=1
  local dir=$1 p
  while read -r p; do
    [ -n "$p" ] || continue
    patch -d "$entry/src" -p1 -s --no-backup-if-mismatch < "$dir/$p" \
      || die "our patch $dir/$p failed to apply; the source is not what the recipe expects"
  done < "$dir/series"
}

configure() {  # build dir, log: CMake over the entry's source with the recipe's flags
  local build=$1 log=$2 py_include py_library
  py_include=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  py_library=$("$python" -c 'import sysconfig, os; v = sysconfig.get_config_var; print(os.path.join(v("LIBDIR"), v("LDLIBRARY")))')
  [ -f "$py_library" ] || die "Python $py_version has no shared library at $py_library; pycaffe needs a Python built with --enable-shared"
  say "configuring ($flavour, key $recipe_key, $("$CMAKE" --version | head -n1)) in $build"
  mkdir -p "$build"
  (cd "$build" && "$CMAKE" "$entry/src" "${cmake_flags[@]}" \
     -DPYTHON_EXECUTABLE="$python" \
     -DPYTHON_INCLUDE_DIR="$py_include" -DPYTHON_LIBRARY="$py_library" \
     > "$log" 2>&1) || { tail -n 30 "$log" >&2; die "cmake failed; full log: $log"; }
  if grep -q "Python interface is disabled" "$log"; then
    die "cmake could not find Python $py_version, its headers, numpy or Boost.Python; see $log"
  fi
}

compile_entry() {  # fetch, verify, patch, configure, compile; ends with the .compiled marker
  check_system
  local blas_note=""
  if [ -n "$openblas_dir" ] && [ ! -f "$openblas_dir/.complete" ]; then
    blas_note=" after the pinned OpenBLAS ($(openblas_expected_wait))"
  fi
  say "no cached build for this recipe: building Caffe from source$blas_note; $(expected_wait all) for Caffe itself, once (later runs reuse $entry)"
  mkdir -p "$entry"
  case "$CAFFE_SOURCE" in
    apt) unpack_apt ;;
    git) unpack_git ;;
    *) die "CAFFE_SOURCE must be apt or git, not '$CAFFE_SOURCE'" ;;
  esac
  apply_series "$here/patches"
  if [ "$CUDA" = 1 ]; then apply_series "$here/patches/cuda"; fi
  if [ -n "$openblas_dir" ]; then build_openblas "$openblas_dir"; fi
  configure "$entry/build" "$entry/cmake.log"

  local targets=(all) start=$SECONDS
  if [ "$CUDA" = 1 ] || [ "$with_tests" = 1 ]; then targets+=(test.testbin); fi
  say "compiling ${targets[*]} with $jobs jobs: $(expected_wait "${targets[@]}") (log: $entry/build.log)"
  (cd "$entry/build" && make -j"$jobs" "${targets[@]}" > "$entry/build.log" 2>&1) \
    || { grep -E 'error|Error' "$entry/build.log" | head -n 20 >&2; die "compilation failed; full log: $entry/build.log"; }
  for f in src/python/caffe/_caffe.so build/tools/caffe; do
    [ -e "$entry/$f" ] || die "the build did not produce $f; see $entry/cmake.log and $entry/build.log"
  done
  echo "compile_seconds=$((SECONDS - start)) jobs=$jobs targets=${targets[*]}" > "$entry/build-info.txt"
  touch "$entry/.compiled"
}

expected_wait() {  # what a cold compile of these targets costs, said before it starts
  # measured with 2 jobs on a Zen 4 EPYC (2026-12-06): everything with the gtest binary in
  # 5.8 min on quiet cores (72 of its 189 objects are the tests'); without it 16 min while
  # other builds kept the load at 5-7. Core-minutes on quiet cores, scaled by the jobs,
  # rounded up; a busy machine takes longer
  local core_minutes=8 minutes
  if [[ " $* " == *" test.testbin "* ]]; then core_minutes=12; fi
  minutes=$(( (core_minutes + jobs - 1) / jobs ))
  echo "expect about $minutes min on $jobs quiet cores"
}

add_tests() {  # a finished entry without test.testbin: compile it in the entry's build tree
  [ -x "$entry/build/test/test.testbin" ] && return 0
  say "compiling Caffe's gtest binary into $entry ($(expected_wait test.testbin), less the library already built; log: $entry/build-tests.log)"
  (cd "$entry/build" && make -j"$jobs" test.testbin > "$entry/build-tests.log" 2>&1) \
    || { grep -E 'error|Error' "$entry/build-tests.log" | head -n 20 >&2; die "compiling the gtest binary failed; full log: $entry/build-tests.log"; }
  [ -x "$entry/build/test/test.testbin" ] || die "the build did not produce build/test/test.testbin; see $entry/build-tests.log"
}

# A finished entry is used as it is. A compiled one whose import check failed (say, a Python
# package was missing) is checked again without recompiling; anything else is a half-written
# build: removed and rebuilt.
if [ "$blas_only" = 1 ]; then
  [ -n "$openblas_dir" ] || die "--blas-only: this machine builds against the system OpenBLAS (CAFFE_BLAS=system), not the pinned one"
  build_openblas "$openblas_dir"
  echo "$openblas_dir"
  exit 0
fi
if [ -n "$configure_dir" ]; then
  [ -f "$entry/.complete" ] || die "no finished build at $entry to configure again; run 'make setup' first"
  configure_dir=$(mkdir -p "$configure_dir" && cd "$configure_dir" && pwd)
  configure "$configure_dir" "$configure_dir/cmake.log"
  exit 0
fi
if [ -f "$entry/.complete" ]; then
  if [ "$with_tests" = 1 ]; then add_tests; fi
  expose
  say "using cached build $entry"
  exit 0
fi
if [ -f "$entry/.compiled" ]; then
  say "found a compiled but unverified build at $entry; checking it again"
elif [ -e "$entry" ]; then
  say "found an unfinished build at $entry (no .complete marker); removing it and rebuilding"
  rm -rf "$entry"
fi
[ -f "$entry/.compiled" ] || compile_entry

"$python" - "$entry/src/python" <<'EOF' || die "the fresh build does not import: see the error above"
import sys
sys.path.insert(0, sys.argv[1])
import caffe
assert "Python" in caffe.layer_type_list(), "Caffe was built without the Python layer"
EOF
if [ -n "$openblas_dir" ]; then link_native_blas "$entry"; fi
touch "$entry/.complete"
expose
say "built $entry"
