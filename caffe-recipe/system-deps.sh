#!/usr/bin/env bash
# Install the system packages of caffe/apt-packages.txt, or say exactly what to do by hand.
# Does nothing (quickly) when all are present or when a conda env supplies the libraries.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mapfile -t wanted < <(grep -vE '^\s*(#|$)' "$here/apt-packages.txt")

if [ -n "${CONDA_PREFIX:-}" ]; then
  echo "system-deps: conda env $CONDA_PREFIX is active; using its libraries (environment.yml)"
  exit 0
fi
if ! command -v dpkg-query >/dev/null; then
  echo "system-deps: error: this is not a Debian/Ubuntu system. Install the equivalents of" >&2
  echo "  ${wanted[*]}" >&2
  echo "by hand, or use the conda route: conda env create -f environment.yml" >&2
  exit 1
fi
missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "system-deps: error: missing system packages: ${missing[*]}" >&2
  echo "  run as root: apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
