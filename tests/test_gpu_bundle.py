"""make gpu-bundle / make gpu-check: the bundle is self-contained, proved in a bare Debian.

The GPU machine has no network, no package manager and none of Caffe's libraries, so the
bundle is run here the same way: in a minimal Debian root made with debootstrap (cached
beside the Caffe builds, none of Caffe's build packages in it), in its own mount and
network namespace (no network at all), with only the bundle and the working tree mounted.
CI bundles the CPU build (the CUDA one needs the CUDA build, `make gpu-bundle`); set
FCN_GPU_BUNDLE to an unpacked bundle folder to check that one instead (make gpu-bundle-test;
a CUDA bundle then takes its CUDA libraries from the folders in FCN_CUDA_LIBS, or else those
it was made with, mounted into the root).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "caffe-recipe"
sys.path.insert(0, str(RECIPE))
import gpu_bundle  # noqa: E402

# What Caffe's build installs (caffe-recipe/apt-packages.txt) and the bundle must bring:
# none of it may be in the bare root, or the test would prove nothing.
NOT_IN_BASE = ("libboost_python", "libboost_system", "libglog", "libgflags", "libprotobuf",
               "libhdf5", "liblmdb", "libleveldb", "libsnappy", "libopenblas", "libpython3",
               "libgfortran")


@functools.cache
def cpu_entry() -> Path:
    """The venv's CPU build of the recipe; its cache folder holds the bare root too."""
    return Path(subprocess.run(["bash", str(RECIPE / "build.sh"), "--venv",
                                str(REPO / ".venv"), "--print-dir"], capture_output=True,
                               text=True, check=True, cwd=REPO).stdout.strip())


def can_isolate() -> str | None:
    """Why the bare-root tests cannot run here, or None."""
    if sys.platform != "linux" or os.geteuid() != 0:
        return "needs root on Linux (chroot and namespaces)"
    for tool in ("unshare", "chroot", "mount"):
        if shutil.which(tool) is None:
            return f"needs {tool} (util-linux)"
    return None


@pytest.fixture(scope="module")
def bare_root() -> Path:
    """A minimal Debian 12 (debootstrap --variant=minbase), made once and cached."""
    why = can_isolate()
    if why:
        pytest.skip(why)
    bare = cpu_entry().parent / "bare-bookworm"
    if not (bare / ".complete").exists():
        if shutil.which("debootstrap") is None:
            pytest.skip("needs debootstrap for the bare root: make test installs it "
                        "(make gpu-bundle-deps), or apt-get install debootstrap")
        partial = bare.with_name(bare.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        made = subprocess.run(["debootstrap", "--variant=minbase", "bookworm", str(partial)],
                              capture_output=True, text=True, timeout=1200, check=False)
        assert made.returncode == 0, f"debootstrap failed:\n{made.stdout[-3000:]}{made.stderr}"
        (partial / ".complete").write_text("")
        shutil.rmtree(bare, ignore_errors=True)
        partial.rename(bare)
    return bare


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """FCN_GPU_BUNDLE, else the CPU build bundled now (the folder, no archive)."""
    if os.environ.get("FCN_GPU_BUNDLE"):
        return Path(os.environ["FCN_GPU_BUNDLE"]).resolve()
    if shutil.which("patchelf") is None:
        pytest.skip("needs patchelf: make test installs it (make gpu-bundle-deps)")
    out = tmp_path_factory.mktemp("bundle")
    subprocess.run([sys.executable, str(RECIPE / "gpu_bundle.py"), "--entry", str(cpu_entry()),
                    "--venv", str(REPO / ".venv"), "--out", str(out), "--no-archive"],
                   check=True, capture_output=True, text=True)
    (folder,) = [p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return folder


def manifest(bundle: Path) -> dict:
    return json.loads((bundle / "MANIFEST.json").read_text())


def cuda_binds(bundle: Path) -> dict[str, str]:
    """For a CUDA bundle: FCN_CUDA_LIBS's folders, else those its libraries were found in
    when it was made (MANIFEST.json), mounted at /cuda/0, /cuda/1, …"""
    if manifest(bundle)["flavour"] != "cuda":
        return {}
    folders = [f for f in os.environ.get("FCN_CUDA_LIBS", "").split(":") if f] or \
        manifest(bundle).get("cuda_folders_where_built", [])
    if not folders:
        pytest.skip("a CUDA bundle needs FCN_CUDA_LIBS (the folders of cudart, cuBLAS, cuRAND)")
    return {folder: f"/cuda/{i}" for i, folder in enumerate(folders)}


def in_bare_root(root: Path, command: str, binds: dict[str, str],
                 env: dict[str, str] | None = None,
                 timeout: float = 600) -> subprocess.CompletedProcess:
    """`command` (sh) as root of a copy-on-write view of `root` (an overlay on a tmpfs, so
    the cached root is never written), in new mount, PID and network namespaces: no
    network, nothing of this machine but the folders in `binds` (host → path inside)."""
    lines = ["set -e", 'mount -t tmpfs tmpfs "$T"', 'mkdir "$T/upper" "$T/work" "$T/root"',
             'mount -t overlay overlay -o "lowerdir=$R,upperdir=$T/upper,workdir=$T/work" '
             '"$T/root"', 'mount -t proc proc "$T/root/proc"']
    for host, inside in binds.items():
        lines += [f'mkdir -p "$T/root{inside}"', f'mount --bind "{host}" "$T/root{inside}"']
    variables = {"PATH": "/usr/bin:/bin", "HOME": "/root", **(env or {})}
    lines.append('exec chroot "$T/root" /usr/bin/env -i ' + " ".join(
        f"{k}='{v}'" for k, v in variables.items()) + ' /bin/sh -c "$COMMAND"')
    scratch = Path(tempfile.mkdtemp(prefix="fcn-bare-root-"))  # the tmpfs's mount point
    try:
        return subprocess.run(["unshare", "--mount", "--net", "--pid", "--fork", "sh", "-c",
                               "\n".join(lines)],
                              env={**os.environ, "R": str(root), "T": str(scratch),
                                   "COMMAND": command},
                              capture_output=True, text=True, timeout=timeout, check=False)
    finally:
        scratch.rmdir()


def bundle_binds(bundle: Path, out: Path | None = None) -> dict[str, str]:
    binds = {str(bundle): "/bundle", str(REPO): "/repo", **cuda_binds(bundle)}
    if out is not None:
        binds[str(out)] = "/out"
    return binds


def bundle_env(bundle: Path) -> dict[str, str]:
    libs = ":".join(cuda_binds(bundle).values())
    return {"FCN_CUDA_LIBS": libs} if libs else {}


def test_the_bare_root_has_none_of_caffes_libraries(bare_root, bundle):
    present = sorted(p.name for d in ("usr/lib/x86_64-linux-gnu", "usr/lib", "lib")
                     for p in (bare_root / d).glob("lib*") if p.name.startswith(NOT_IN_BASE))
    assert present == [], f"the bare root is not bare: {present}"
    assert not list((bare_root / "usr/bin").glob("python3*"))
    bundled = " ".join(manifest(bundle)["libraries"])
    for name in ("libboost_python", "libglog", "libgflags", "libprotobuf", "libhdf5",
                 "liblmdb", "libopenblas", "libpython3"):
        assert name in bundled, f"{name} is not in the bundle"


def test_every_library_resolves_inside_the_bundle_or_the_base_system(bare_root, bundle):
    """ldd in the bare root over every ELF file of the bundle: nothing missing, and what
    comes from outside the bundle is only glibc and the C++ runtime (gpu_bundle.BASE)."""
    elves = sorted(str(p.relative_to(bundle)) for p in bundle.rglob("*")
                   if p.is_file() and not p.is_symlink() and gpu_bundle.is_elf(p)
                   and (".so" in p.name or p.parent.name == "bin")
                   # a wheel's vendored libraries resolve through the modules that load them
                   and not p.parent.name.endswith(".libs"))
    assert len(elves) > 40
    script = 'LD_LIBRARY_PATH="${FCN_CUDA_LIBS:-}"; export LD_LIBRARY_PATH\n' + "".join(
        f"echo '== {e}'; ldd /bundle/{e} || true\n" for e in elves)  # bin/python's path
    done = in_bare_root(bare_root, script, bundle_binds(bundle), bundle_env(bundle))
    assert done.returncode == 0, done.stderr
    allowed = set(gpu_bundle.BASE)
    if manifest(bundle)["flavour"] == "cuda":
        allowed |= set(gpu_bundle.CUDA_RUNTIME)  # the machine's, found by bin/python
    current, problems = None, []
    for line in done.stdout.splitlines():
        if line.startswith("== "):
            current = line[3:]
            continue
        parts = line.split()
        if "=>" not in parts:
            continue
        name, target = parts[0], parts[2]
        if target == "not" and not (name in gpu_bundle.CUDA_RUNTIME and not cuda_binds(bundle)):
            problems.append(f"{current}: {name} not found")
        elif not target.startswith("/bundle/") and name not in allowed:
            problems.append(f"{current}: {name} from the base system ({target})")
    assert problems == [], "\n".join(problems[:30])


def test_pycaffe_imports_in_the_bare_root(bare_root, bundle, capsys):
    done = in_bare_root(bare_root, (
        "cd /repo && /bundle/bin/python -c 'import caffe, numpy, scipy.io, scipy.ndimage, "
        "PIL.Image, lmdb, google.protobuf, tqdm, voc_layers; caffe.set_mode_cpu(); "
        "print(caffe.__file__, numpy.__version__)'"), bundle_binds(bundle), bundle_env(bundle))
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("/bundle/lib/python3")
    size = manifest(bundle)["bytes"] / 2**20
    with capsys.disabled():
        print(f"\n[gpu-bundle] {bundle.name}: {size:.0f} MiB unpacked, "
              f"{len(manifest(bundle)['libraries'])} libraries, imports in a bare Debian")


def test_gpu_check_runs_its_cpu_half_and_says_no_gpu(bare_root, bundle, tmp_path):
    """make gpu-check's script, from the bundle alone, with no network: Caffe's CPU tests
    and a short training through the Python data layers; then "no GPU", exit 0."""
    out = tmp_path / "out"
    out.mkdir()
    done = in_bare_root(bare_root, "cd /repo && sh caffe-recipe/gpu-check.sh",
                        bundle_binds(bundle, out),
                        {"OUT": "/out", "GPU_BUNDLE_DIR": "/", "GPU_BUNDLE": "bundle",
                         **bundle_env(bundle)})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "no GPU on this machine" in done.stdout
    result = json.loads((out / "gpu-check.json").read_text())
    assert result["no_gpu"].startswith("no GPU: ")
    tests = result["cpu_tests"]
    assert tests["total"] > 20 and tests["passed"] == tests["total"], tests
    metrics = result["cpu_train"]["score"]["label"]
    assert 0 <= metrics["mean_iu"] <= 1 and 0 < metrics["pixel_accuracy"] <= 1
    assert len(result["cpu_train"]["final_sha256"]) == 64
    assert "| GPU half | no GPU" in (out / "gpu-check.md").read_text()
    written = [p for p in out.rglob("*") if p.is_file()]
    assert len(written) <= 8, written


def fake_bundle(folder: Path, flavour: str, glibc: str = "2.17") -> Path:
    """bin/python as the bundle has it, a MANIFEST, and an 'interpreter' that reports."""
    (folder / "bin").mkdir(parents=True)
    shutil.copy2(RECIPE / "bundle-python.sh", folder / "bin/python")
    (folder / "bin/python").chmod(0o755)
    (folder / "bin/python3.11").write_text(
        '#!/bin/sh\necho "args: $*"\necho "cuda: ${FCN_CUDA_LIB_DIRS:-}"\n'
        'echo "path: $PYTHONPATH"\n')
    (folder / "bin/python3.11").chmod(0o755)
    (folder / "MANIFEST.json").write_text(json.dumps(
        {"flavour": flavour, "needs": {"GLIBC": glibc, "GLIBCXX": "3.4.29"}}, indent=1))
    return folder


def test_a_cuda_bundle_names_the_missing_libraries_and_finds_nvidias_wheels(bare_root,
                                                                           tmp_path):
    bundle = fake_bundle(tmp_path / "b", "cuda")
    done = in_bare_root(bare_root, "cd /repo && /bundle/bin/python -c pass",
                        {str(bundle): "/bundle", str(REPO): "/repo"})
    assert done.returncode == 3, done.stdout + done.stderr
    assert "libcudart.so.13" in done.stderr and "libcublas.so.13" in done.stderr
    assert "FCN_CUDA_LIBS" in done.stderr and "Traceback" not in done.stderr
    # NVIDIA's pip packages in a Python under /opt, laid out as on the GPU machine
    wheels = tmp_path / "nvidia"
    (wheels / "cu13/lib").mkdir(parents=True)
    for name in gpu_bundle.CUDA_RUNTIME:
        (wheels / "cu13/lib" / name).write_bytes(b"")
    site = "/opt/torch/.venv/lib/python3.12/site-packages/nvidia"
    done = in_bare_root(bare_root, "cd /repo && /bundle/bin/python -c pass",
                        {str(bundle): "/bundle", str(REPO): "/repo", str(wheels): site})
    assert done.returncode == 0, done.stderr
    assert f"cuda: {site}/cu13/lib" in done.stdout
    assert "path: /repo:/repo/layers" in done.stdout


def test_a_system_older_than_the_bundle_is_named_before_anything_runs(tmp_path):
    bundle = fake_bundle(tmp_path / "b", "cpu", glibc="9.99")
    done = subprocess.run([str(bundle / "bin/python"), "-c", "pass"], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 3 and "needs glibc 9.99 or newer" in done.stderr
    assert "args:" not in done.stdout
    assert manifest(fake_bundle(tmp_path / "c", "cpu"))["needs"]["GLIBC"] == "2.17"
    ok = subprocess.run([str(tmp_path / "c/bin/python"), "-c", "pass"], capture_output=True,
                        text=True, check=False)
    assert ok.returncode == 0 and "args: -c pass" in ok.stdout


def test_the_manifest_records_the_oldest_system_the_bundle_runs_on(bundle):
    needs = manifest(bundle)["needs"]
    assert set(needs) == {"GLIBC", "GLIBCXX"}
    assert (2, 17) <= tuple(int(x) for x in needs["GLIBC"].split(".")) <= (2, 36)


def make_archive(folder: Path, name: str) -> Path:
    fake_bundle(folder / "src" / name, "cpu")
    (folder / "src" / name / ".unpacked").write_text("")
    archive = folder / f"{name}.tar.xz"
    with tarfile.open(archive, "w:xz") as tar:
        tar.add(folder / "src" / name, arcname=name)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    (folder / f"{name}.tar.xz.sha256").write_text(f"{digest}  {archive.name}\n")
    shutil.rmtree(folder / "src")
    return archive


def gpu_check_sh(folder: Path, name: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(RECIPE / "gpu-check.sh")], cwd=REPO, capture_output=True,
                          text=True, timeout=60, check=False,
                          env={**os.environ, "GPU_BUNDLE_DIR": str(folder),
                               "GPU_BUNDLE": name})


def test_gpu_check_unpacks_the_archive_once_and_runs_the_bundles_python(tmp_path):
    make_archive(tmp_path, "fcn-caffe-cpu")
    done = gpu_check_sh(tmp_path, "fcn-caffe-cpu")
    assert done.returncode == 0, done.stderr
    assert "args: -m bench.gpu_check --bundle" in done.stdout
    assert (tmp_path / "fcn-caffe-cpu/.unpacked").exists()
    (tmp_path / "fcn-caffe-cpu.tar.xz").unlink()  # the folder is used from now on
    assert gpu_check_sh(tmp_path, "fcn-caffe-cpu").returncode == 0


def test_a_damaged_or_cut_archive_is_never_used(tmp_path):
    archive = make_archive(tmp_path, "fcn-caffe-cpu")
    whole = archive.read_bytes()
    archive.write_bytes(whole[: len(whole) // 2])  # cut in transit
    done = gpu_check_sh(tmp_path, "fcn-caffe-cpu")
    assert done.returncode == 2 and "does not match" in done.stderr
    assert not (tmp_path / "fcn-caffe-cpu").exists()
    (tmp_path / "fcn-caffe-cpu.tar.xz.sha256").unlink()  # no checksum: tar itself fails
    done = gpu_check_sh(tmp_path, "fcn-caffe-cpu")
    assert done.returncode != 0
    assert not (tmp_path / "fcn-caffe-cpu").exists()


def test_no_archive_no_folder_says_how_to_make_one(tmp_path):
    done = gpu_check_sh(tmp_path, "fcn-caffe-cuda90")
    assert done.returncode == 2
    assert "make gpu-bundle" in done.stderr and "fcn-caffe-cuda90.tar.xz" in done.stderr


def test_make_gpu_check_reaches_no_network_and_no_package_manager():
    """The whole of `make gpu-check` is the script; the script, the bundle's Python and the
    check never call a package manager, pip, a downloader or the build."""
    env = {k: v for k, v in os.environ.items()  # as a user types it, not inside make test
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    dry = subprocess.run(["make", "--no-print-directory", "-n", "gpu-check"], cwd=REPO,
                         capture_output=True, text=True, check=True, env=env).stdout.split("\n")
    assert [line for line in dry if line.strip()] == ["sh caffe-recipe/gpu-check.sh"]
    for path in (RECIPE / "gpu-check.sh", RECIPE / "bundle-python.sh",
                 REPO / "bench/gpu_check.py"):
        text = path.read_text()
        for word in ("apt-get", "apt install", "pip install", "-m pip", "curl", "wget",
                     "urllib", "requests", "socket", "build.sh", "debootstrap"):
            assert word not in text, f"{path.name} mentions {word}"
