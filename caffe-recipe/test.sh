#!/usr/bin/env bash
# Run Caffe's own test suites against the build the venv uses: the C++ gtest binary (CPU cases,
# run from the source root as Caffe expects) and pycaffe's unittests. Prints the counts; fails
# unless every test passes.
#
#   caffe/test.sh --venv .venv [--gtest-filter PATTERN]
set -euo pipefail

die() { echo "caffe-test: error: $*" >&2; exit 1; }
venv="" filter='-*GPU*'
while [ $# -gt 0 ]; do
  case "$1" in
    --venv) venv=$2; shift 2 ;;
    --gtest-filter) filter=$2; shift 2 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) die "unknown argument '$1'" ;;
  esac
done
[ -n "$venv" ] && [ -f "$venv/caffe-root" ] || die "no Caffe build recorded in $venv/caffe-root; run 'make setup'"
venv=$(cd "$venv" && pwd)
entry=$(cat "$venv/caffe-root")
[ -f "$entry/.complete" ] || die "$entry is not a finished build; run 'make setup'"
if [ ! -x "$entry/build/test/test.testbin" ]; then
  # make setup compiles what the harness runs; the gtest binary is compiled the first time
  # the tests need it, in the same build tree (caffe-recipe/build.sh --with-tests)
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  [ "$(bash "$here/build.sh" --venv "$venv" --print-dir)" = "$entry" ] \
    || die "$entry has no gtest binary and is not the build this recipe makes; run 'make setup' first"
  bash "$here/build.sh" --venv "$venv" --with-tests --no-expose
fi
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
export TMPDIR="$logs"  # Caffe's tests leave caffe_test.* folders in the temp dir; keep them in ours

echo "caffe-test: C++ suite ($entry/build/test/test.testbin --gtest_filter=$filter)"
cpp_status=0
(cd "$entry/src" && "$entry/build/test/test.testbin" --gtest_filter="$filter" --gtest_color=no \
  > "$logs/cpp.log" 2>&1) || cpp_status=$?
cpp_total=$(sed -nE 's/^\[==========\] ([0-9]+) tests? from .* ran\..*/\1/p' "$logs/cpp.log" | tail -n1)
cpp_passed=$(sed -nE 's/^\[  PASSED  \] ([0-9]+) tests?\..*/\1/p' "$logs/cpp.log" | tail -n1)
if [ "$cpp_status" != 0 ] || [ -z "$cpp_total" ] || [ "${cpp_passed:-0}" != "$cpp_total" ]; then
  grep -E '^\[  FAILED  \]' "$logs/cpp.log" | head -n 30 >&2 || tail -n 30 "$logs/cpp.log" >&2
  die "C++ suite failed: ${cpp_passed:-0}/${cpp_total:-?} passed (exit $cpp_status)"
fi

echo "caffe-test: pycaffe unittests ($entry/src/python/caffe/test)"
py_status=0
(cd "$entry/src/python" && GLOG_minloglevel=2 "$venv/bin/python" -m unittest discover -s caffe/test \
  > "$logs/py.log" 2>&1) || py_status=$?
py_total=$(sed -nE 's/^Ran ([0-9]+) tests? in .*/\1/p' "$logs/py.log" | tail -n1)
py_skipped=$(sed -nE 's/.*skipped=([0-9]+).*/\1/p' "$logs/py.log" | tail -n1)
if [ "$py_status" != 0 ] || [ -z "$py_total" ]; then
  tail -n 40 "$logs/py.log" >&2
  die "pycaffe suite failed: $(grep -E '^FAILED' "$logs/py.log" || echo 'no summary') of ${py_total:-?} tests (exit $py_status)"
fi
[ "${py_skipped:-0}" = 0 ] || die "pycaffe suite skipped $py_skipped tests; all must run (is graphviz/pydot installed?)"

echo "caffe-test: C++ $cpp_passed/$cpp_total passed; pycaffe $py_total/$py_total passed"
