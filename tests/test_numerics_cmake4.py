"""The recipe configures with CMake 4 (which refuses Caffe's `cmake_minimum_required(2.8.7)`
without the recipe's policy minimum) and generates the same build as the system's CMake 3.

CMake 4 comes from its wheel, downloaded with pip into the cache (no install, configure only,
~15 s); without a package registry the test is skipped with that reason.
"""

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".venv"
CMAKE4 = "4.4.5"
TOOLS = Path.home() / ".cache/fcn-caffe/tools"


def cmake4() -> Path:
    """bin/cmake of the CMake 4 wheel, unpacked once into the cache."""
    root = TOOLS / f"cmake-{CMAKE4}"
    binary = root / "cmake/data/bin/cmake"
    if binary.exists():
        return binary
    TOOLS.mkdir(parents=True, exist_ok=True)
    got = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                          "--only-binary=:all:", f"cmake=={CMAKE4}", "-d", str(TOOLS)],
                         capture_output=True, text=True)
    wheels = sorted(TOOLS.glob(f"cmake-{CMAKE4}-*.whl"))
    if got.returncode != 0 or not wheels:
        pytest.skip(f"cannot download the cmake {CMAKE4} wheel (offline?): {got.stderr[-300:]}")
    with zipfile.ZipFile(wheels[0]) as wheel:
        wheel.extractall(root)
    for tool in (root / "cmake/data/bin").iterdir():
        tool.chmod(0o755)
    return binary


def compile_flags(build: Path) -> dict[str, str]:
    """libcaffe's generated compile flags and link line, with the build folder's path
    replaced, so two configures of one source can be compared (numpy's headers are named
    by the configuring venv's path, which differs between clones: written NUMPY). A library
    in the system's own folder is written as -lNAME: CMake 4 names it by full path where
    3.25, under Caffe's old policies, wrote -lNAME (policy CMP0060); the linker finds the
    same file."""
    flags = (build / "src/caffe/CMakeFiles/caffe.dir/flags.make").read_text()
    link = (build / "src/caffe/CMakeFiles/caffe.dir/link.txt").read_text()
    out = {}
    for line in flags.splitlines():
        name, sep, value = line.partition(" = ")
        if sep and name in ("CXX_DEFINES", "CXX_INCLUDES", "CXX_FLAGS"):
            value = re.sub(r"-I\S+/site-packages/numpy/_core/include", "-INUMPY", value)
            out[name] = value.replace(str(build), "BUILD")
    words = link.replace(str(build), "BUILD").split()
    system_lib = re.compile(r"^/usr/lib/x86_64-linux-gnu/lib([^/]+?)\.(?:so|a)$")
    out["LINK_LIBS"] = " ".join(system_lib.sub(r"-l\1", w) for w in words
                                if w.endswith((".so", ".a")) or w.startswith("-l"))
    return out


def test_cmake4_configures_the_recipe_like_cmake3(tmp_path):
    entry = Path((VENV / "caffe-root").read_text().strip())
    cmake = cmake4()
    done = subprocess.run(["bash", "caffe-recipe/build.sh", "--venv", str(VENV),
                           "--configure-only", str(tmp_path / "build")],
                          cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "CMAKE": str(cmake)})
    log = (tmp_path / "build/cmake.log").read_text() if (tmp_path / "build/cmake.log").exists() \
        else ""
    assert done.returncode == 0, done.stderr[-2000:] + log[-2000:]
    assert f"cmake version {CMAKE4}" in done.stderr
    assert "Compatibility with CMake < 3.5 has been removed" not in log
    assert re.search(r"BLAS\s+:\s+Yes \(Open\)", log)
    assert "Configuring done" in log and "Generating done" in log
    # The same compiler flags, definitions, include folders and libraries as the cached
    # build that the system's CMake 3 configured.
    assert compile_flags(tmp_path / "build") == compile_flags(entry / "build")
