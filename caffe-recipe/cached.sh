#!/usr/bin/env bash
# The build cache is an input of every command, and a side effect of only `make setup`
# (and the targets that build: test, demo, caffe-*): this script finds this recipe's
# finished build and points the venv at it, without a lock, so a read-only cache works.
#
#   caffe-recipe/cached.sh --venv .venv           use the finished build, or say in one line
#                                                 that it is missing and that `make setup`
#                                                 builds it (exit 1); never compiles
#   caffe-recipe/cached.sh --venv .venv --build   the same, building it first when missing
#                                                 (caffe-recipe/build.sh; make setup)
#
# The cache folder is CAFFE_CACHE, else $XDG_CACHE_HOME/fcn-caffe, else ~/.cache/fcn-caffe;
# with HOME unset, ~ is the user's home in the password database (as Python's
# Path.home() takes it), and where there is none, one line asks for HOME or CAFFE_CACHE.
# The recipe's key is computed by build.sh --print-dir alone (build.sh is part of the key,
# so this lives beside it instead of in it).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { echo "caffe-recipe/cached.sh: error: $*" >&2; exit 1; }

venv="" build=0
while [ $# -gt 0 ]; do
  case "$1" in
    --venv) venv=$2; shift 2 ;;
    --build) build=1; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[ -n "$venv" ] || die "--venv DIR is required"
[ -x "$venv/bin/python" ] || die "no virtualenv at $venv; run 'make setup' first (it makes one and builds Caffe into the cache)"

if [ -z "${CAFFE_CACHE:-}" ]; then
  if [ -n "${XDG_CACHE_HOME:-}" ]; then
    CAFFE_CACHE=$XDG_CACHE_HOME/fcn-caffe
  else
    home=${HOME:-}
    [ -n "$home" ] || home=$(getent passwd "$(id -u)" | cut -d: -f6 || true)
    [ -n "$home" ] || die "HOME is not set and user $(id -u) has no home directory, so the build cache (~/.cache/fcn-caffe) has no place; set HOME, or CAFFE_CACHE=DIR for the cache folder"
    CAFFE_CACHE=$home/.cache/fcn-caffe
  fi
fi
export CAFFE_CACHE

entry=$(bash "$here/build.sh" --venv "$venv" --print-dir)
if [ ! -f "$entry/.complete" ]; then
  if [ "$build" = 1 ]; then exec bash "$here/build.sh" --venv "$venv"; fi
  why="no finished Caffe build for this recipe at $entry"
  [ -e "$entry" ] && why="$why (a build there is unfinished)"
  die "$why. This command uses the build and never starts one: run 'make setup' to build it (once; OpenBLAS and Caffe from source, several minutes), or set CAFFE_CACHE to the folder that holds it"
fi

# Point the venv's pycaffe and caffe tool at the entry (what build.sh's expose writes),
# only where they point elsewhere: nothing is written on the usual run.
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
real=$(realpath "$entry")
resolved() { realpath -q "$1" || true; }
if [ "$(resolved "$(cat "$site/caffe-from-source.pth" 2>/dev/null)")" != "$real/src/python" ] ||
   [ "$(resolved "$(cat "$venv/caffe-root" 2>/dev/null)")" != "$real" ] ||
   [ "$(resolved "$venv/bin/caffe")" != "$(resolved "$real/build/tools/caffe")" ]; then
  echo "$real/src/python" > "$site/caffe-from-source.pth"
  ln -sfn "$real/build/tools/caffe" "$venv/bin/caffe"
  echo "$real" > "$venv/caffe-root"
fi
