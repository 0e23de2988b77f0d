"""The CUDA side of the build recipe, checked without compiling and without a GPU.

cuda.sh runs against fake toolkits (a shell-script nvcc, empty library files) and a fake
`python -m pip` that lays out files the way NVIDIA's wheels do, so each branch of detection is
exercised in milliseconds. The patches are dry-run against the Caffe source we build, and the
build checker is run on synthetic fatbinaries and on the real CPU build (which must fail it).
"""

import importlib.util
import os
import shlex
import struct
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "caffe-recipe"
CUDA_PATCHES = RECIPE / "patches" / "cuda"


def load_cuda_check():
    spec = importlib.util.spec_from_file_location("cuda_check", RECIPE / "cuda_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


cuda_check = load_cuda_check()


def fake_toolkit(root: Path, version: str = "13.0", arches=("75", "80", "90"),
                 cublas: bool = False, help_text: str = "") -> Path:
    """A CUDA_HOME whose nvcc answers --version, --list-gpu-code and --help like the real one."""
    (root / "bin").mkdir(parents=True)
    codes = "\\n".join(f"sm_{a}" for a in arches)
    nvcc = root / "bin" / "nvcc"
    nvcc.write_text(
        "#!/bin/sh\n"
        'case "$1" in\n'
        f'  --version) echo "Cuda compilation tools, release {version}, V{version}.1";;\n'
        f"  --list-gpu-code) printf '{codes}\\n';;\n"
        f"  --help) echo '{help_text}';; esac\n"
    )
    nvcc.chmod(0o755)
    if cublas:
        (root / "include").mkdir()
        (root / "include" / "cublas_v2.h").write_text("")
        (root / "lib64").mkdir()
        for lib in ("libcublas.so", "libcurand.so"):
            (root / "lib64" / lib).write_text("")
    return root


def fake_pip(path: Path, log: Path, fail: bool = False) -> Path:
    """A `python` whose `-m pip install --target DIR ...` lays out the CUDA 13 wheels' files."""
    path.write_text(
        "#!/bin/bash\n"
        f'echo "$*" >> {shlex.quote(str(log))}\n'
        + ("exit 1\n" if fail else "")
        + 'while [ $# -gt 0 ]; do [ "$1" = --target ] && dir=$2; shift; done\n'
        'mkdir -p "$dir/nvidia/cu13/include" "$dir/nvidia/cu13/lib" "$dir/nvidia/nccl/include" '
        '"$dir/nvidia/nccl/lib"\n'
        'touch "$dir/nvidia/cu13/include/cublas_v2.h" "$dir/nvidia/cu13/lib/libcublas.so.13" '
        '"$dir/nvidia/cu13/lib/libcurand.so.10" "$dir/nvidia/nccl/include/nccl.h" '
        '"$dir/nvidia/nccl/lib/libnccl.so.2"\n'
    )
    path.chmod(0o755)
    return path


def cuda_flags(tmp_path: Path, python: str = "/bin/false", **env: str):
    """Source cuda.sh the way build.sh does; return (exit code, flags, stderr)."""
    script = (
        "set -euo pipefail\n"
        'die() { echo "error: $*" >&2; exit 1; }\n'
        'say() { echo "$*" >&2; }\n'
        f"source {shlex.quote(str(RECIPE / 'cuda.sh'))}\n"
        "cmake_flags=()\n"
        "cuda_cmake_flags\n"
        'printf "%s\\n" "${cmake_flags[@]}"\n'
    )
    variables = {"CUDA_ARCH": "90", "CUDNN": "0", "NCCL": "0",
                 "cache_root": str(tmp_path / "cache"), "python": python, **env}
    exports = "".join(f"{k}={shlex.quote(v)}\n" for k, v in variables.items())
    run_env = {k: v for k, v in os.environ.items() if k not in ("CUDA_HOME", "NCCL_DIR")}
    result = subprocess.run(["bash", "-c", exports + script], capture_output=True, text=True,
                            env={**run_env, **{k: v for k, v in env.items() if k.isupper()}},
                            check=False)
    return result.returncode, result.stdout.splitlines(), result.stderr


def test_missing_nvcc_is_named(tmp_path):
    code, _, err = cuda_flags(tmp_path, CUDA_HOME=str(tmp_path / "nowhere"))
    assert code != 0
    assert f"no nvcc at {tmp_path / 'nowhere'}/bin/nvcc" in err


def test_architecture_the_toolkit_dropped_is_refused(tmp_path):
    home = fake_toolkit(tmp_path / "cuda", cublas=True)
    code, _, err = cuda_flags(tmp_path, CUDA_HOME=str(home), CUDA_ARCH="61")
    assert code != 0
    assert "cannot compile for sm_61" in err and "sm_75 sm_80 sm_90" in err


def test_architecture_must_be_a_number(tmp_path):
    home = fake_toolkit(tmp_path / "cuda", cublas=True)
    code, _, err = cuda_flags(tmp_path, CUDA_HOME=str(home), CUDA_ARCH="9.0")
    assert code != 0 and "not '9.0'" in err


def test_cudnn_is_refused_with_the_reason(tmp_path):
    home = fake_toolkit(tmp_path / "cuda", cublas=True)
    code, _, err = cuda_flags(tmp_path, CUDA_HOME=str(home), CUDNN="1")
    assert code != 0
    assert "cuDNN 8 removed" in err and "CUDNN=0" in err


def test_toolkit_with_cublas_gives_gpu_flags_for_one_arch(tmp_path):
    home = fake_toolkit(tmp_path / "cuda", cublas=True)
    code, flags, err = cuda_flags(tmp_path, CUDA_HOME=str(home))  # python=/bin/false: no pip
    assert code == 0, err
    assert "-DCPU_ONLY=OFF" in flags and "-DCPU_ONLY=ON" not in flags
    assert {"-DCUDA_ARCH_NAME=Manual", "-DCUDA_ARCH_BIN=90", "-DCUDA_ARCH_PTX=90"} <= set(flags)
    assert f"-DCUDA_cublas_LIBRARY={home}/lib64/libcublas.so" in flags
    assert f"-DCUDA_curand_LIBRARY={home}/lib64/libcurand.so" in flags
    assert "-DUSE_CUDNN=OFF" in flags and "-DUSE_NCCL=OFF" in flags


def test_template_stubs_stay_linkable_where_nvcc_has_the_switch(tmp_path):
    switches = ("--static-global-template-stub {true|false} "
                "--device-entity-has-hidden-visibility {true|false}")
    home = fake_toolkit(tmp_path / "cuda13", cublas=True, help_text=switches)
    code, flags, err = cuda_flags(tmp_path, CUDA_HOME=str(home))
    assert code == 0, err
    assert (f"-DCUDA_NVCC_FLAGS=-I{home}/include;-static-global-template-stub=false;"
            "-device-entity-has-hidden-visibility=false") in flags

    older = fake_toolkit(tmp_path / "cuda12", version="12.4", cublas=True)
    code, flags, err = cuda_flags(tmp_path, CUDA_HOME=str(older))
    assert code == 0, err
    assert f"-DCUDA_NVCC_FLAGS=-I{older}/include" in flags  # an older nvcc would reject it


def test_cuda13_without_cublas_installs_pinned_wheels_once(tmp_path):
    home = fake_toolkit(tmp_path / "cuda")
    log = tmp_path / "pip.log"
    python = str(fake_pip(tmp_path / "python", log))
    code, flags, err = cuda_flags(tmp_path, python=python, CUDA_HOME=str(home))
    assert code == 0, err
    calls = log.read_text().splitlines()
    assert len(calls) == 1
    assert "-m pip install" in calls[0] and "--no-deps" in calls[0] and "--target" in calls[0]
    pins = [word for word in calls[0].split() if word.startswith("nvidia-")]
    assert sorted(p.split("==")[0] for p in pins) == ["nvidia-cublas", "nvidia-curand"]
    assert all("==" in p for p in pins)
    (wheels,) = (tmp_path / "cache").glob("nvidia-cu13-*")
    lib = wheels / "nvidia" / "cu13" / "lib"
    assert os.readlink(lib / "libcublas.so") == "libcublas.so.13"
    assert os.readlink(lib / "libcurand.so") == "libcurand.so.10"
    assert f"-DCUDA_cublas_LIBRARY={lib}/libcublas.so" in flags
    assert f"-DCMAKE_LIBRARY_PATH={lib}" in flags  # what FindCUDA's own search uses
    assert f"-DCUDA_NVCC_FLAGS=-I{wheels}/nvidia/cu13/include" in flags
    assert f"-DCMAKE_BUILD_RPATH={lib}" in flags

    code, again, err = cuda_flags(tmp_path, python=python, CUDA_HOME=str(home))
    assert code == 0, err
    assert again == flags and len(log.read_text().splitlines()) == 1  # reused, not reinstalled


def test_pip_failure_is_reported(tmp_path):
    home = fake_toolkit(tmp_path / "cuda")
    python = str(fake_pip(tmp_path / "python", tmp_path / "pip.log", fail=True))
    code, _, err = cuda_flags(tmp_path, python=python, CUDA_HOME=str(home))
    assert code != 0 and "pip could not install nvidia-cublas==" in err
    assert not list((tmp_path / "cache").glob("nvidia-cu13-*/.complete"))


def test_older_toolkit_without_cublas_is_refused(tmp_path):
    home = fake_toolkit(tmp_path / "cuda", version="12.4", arches=("50", "90"))
    code, _, err = cuda_flags(tmp_path, CUDA_HOME=str(home))
    assert code != 0 and "CUDA 12.4 toolkit" in err and "has no cuBLAS/cuRAND" in err


def test_nccl_from_wheel_and_from_nccl_dir(tmp_path):
    home = fake_toolkit(tmp_path / "cuda", cublas=True)
    python = str(fake_pip(tmp_path / "python", tmp_path / "pip.log"))
    code, flags, err = cuda_flags(tmp_path, python=python, CUDA_HOME=str(home), NCCL="1")
    assert code == 0, err
    (nccl,) = (tmp_path / "cache").glob("nvidia-nccl-*")
    assert "-DUSE_NCCL=ON" in flags
    assert f"-DNCCL_LIBRARIES={nccl}/nvidia/nccl/lib/libnccl.so" in flags
    assert f"-DCMAKE_BUILD_RPATH={home}/lib64;{nccl}/nvidia/nccl/lib" in flags

    code, _, err = cuda_flags(tmp_path, CUDA_HOME=str(home), NCCL="1",
                              NCCL_DIR=str(tmp_path / "empty"))
    assert code != 0 and f"no nccl.h in {tmp_path / 'empty'}/include" in err


def test_build_sh_keys_the_gpu_build_apart(tmp_path):
    home = fake_toolkit(tmp_path / "cuda", cublas=True)
    env = {**os.environ, "CUDA_HOME": str(home), "CAFFE_CACHE": str(tmp_path / "cache")}

    def entry(**extra: str) -> str:
        return subprocess.run(["bash", str(RECIPE / "build.sh"), "--venv", str(REPO / ".venv"),
                               "--print-dir"], env={**env, **extra}, capture_output=True,
                              text=True, check=True).stdout.strip()

    gpu, cpu = entry(CUDA="1"), entry(CUDA="0")
    assert Path(gpu).name.startswith("caffe-cuda90-") and Path(cpu).name.startswith("caffe-cpu-")
    assert Path(entry(CUDA="1", CUDA_ARCH="80")).name.startswith("caffe-cuda80-")


def venv_build() -> Path:
    """The cache entry the venv's pycaffe comes from (CPU unless `make caffe CUDA=1` ran)."""
    return Path((REPO / ".venv" / "caffe-root").read_text().strip())


def test_every_cuda_patch_has_a_reason_and_applies():
    series = [p for p in (CUDA_PATCHES / "series").read_text().split() if p]
    assert series, "the CUDA series is empty"
    root = venv_build()
    reverse = ["-R"] if root.name.startswith("caffe-cuda") else []  # a GPU entry has them in
    for name in series:
        patch = CUDA_PATCHES / name
        assert patch.read_text().startswith("Reason: "), f"{name} has no 'Reason:' header"
        result = subprocess.run(["patch", "--dry-run", *reverse, "-p1", "-d", str(root / "src"),
                                 "-i", str(patch)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, f"{name} does not apply: {result.stdout}{result.stderr}"


def test_parse_ldd_marks_missing_libraries():
    text = (
        "\tlinux-vdso.so.1 (0x00007ffd)\n"
        "\tlibcudart.so.13 => /usr/local/cuda/lib64/libcudart.so.13 (0x00007f87)\n"
        "\tlibcublas.so.13 => not found\n"
    )
    assert cuda_check.parse_ldd(text) == {
        "libcudart.so.13": "/usr/local/cuda/lib64/libcudart.so.13", "libcublas.so.13": None}


def fatbin_container(entries) -> bytes:
    """A fatbinary container holding (kind, arch, payload) entries in nvcc's layout."""
    body = b""
    for kind, arch, payload in entries:
        header = struct.pack("<HHIQIIHHII", kind, 0, 64, len(payload), 0, 0, 0, 0, arch, 0)
        body += header.ljust(64, b"\0") + payload
    return struct.pack("<IHHQ", cuda_check.FATBIN_MAGIC, 1, 16, len(body)) + body


def test_parse_fatbin_reads_kinds_and_arches_across_containers():
    blob = (fatbin_container([(1, 90, b"ptx!" * 4), (2, 90, b"\x7fELF" * 8)])
            + b"\0" * 8 + fatbin_container([(2, 80, b"x" * 16)]))
    codes = cuda_check.parse_fatbin(blob)
    assert codes == [cuda_check.DeviceCode(1, 90), cuda_check.DeviceCode(2, 90),
                     cuda_check.DeviceCode(2, 80)]
    assert [str(c) for c in codes] == ["PTX compute_90", "ELF sm_90", "ELF sm_80"]
    with pytest.raises(cuda_check.CheckError, match="unexpected bytes"):
        cuda_check.parse_fatbin(b"\x01" * 16)


def test_cpu_build_fails_the_cuda_check():
    cpu = venv_build()
    if cpu.name.startswith("caffe-cuda"):
        pytest.skip("the venv uses the GPU build (make caffe CUDA=1); make caffe switches back")
    with pytest.raises(cuda_check.CheckError, match="does not link libcudart"):
        cuda_check.check_build(cpu, 90)
    with pytest.raises(cuda_check.CheckError, match="no .nv_fatbin section"):
        cuda_check.elf_section((cpu / "build/lib/libcaffe.so").resolve(), ".nv_fatbin")
    assert cuda_check.main([str(cpu)]) == 1


def test_make_target_checks_without_switching_the_venv():
    out = subprocess.run(["make", "-n", "caffe-cuda-check"], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    assert "CUDA=1 bash caffe-recipe/build.sh --venv .venv --no-expose" in out
    assert "cuda_check.py --arch 90" in out
