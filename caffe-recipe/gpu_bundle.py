"""`make gpu-bundle`: one self-contained folder (and .tar.xz) that runs the harness on a
machine with nothing installed: no apt, no pip, no network (caffe-recipe/CUDA.md, "The GPU
bundle").

It holds a build of this recipe (the CUDA entry by default; `--entry` takes any, the tests
bundle the CPU one), the Python the venv was made from (interpreter, libpython, standard
library) with the project's pinned numpy, scipy (the parts the harness imports), Pillow,
protobuf, lmdb, six and tqdm, pycaffe, the `caffe` tool, Caffe's gtest binary with its test
data, and every shared library these need that a bare system lacks, found with ldd and
given RUNPATHs relative to the bundle (patchelf). Left to the machine: glibc, libstdc++ and
libgcc_s (in every base system, newer ones run older builds) and, for the CUDA build,
cudart, cuBLAS and cuRAND, which `bin/python` finds at run time in the machine's NVIDIA pip
packages or CUDA install. MANIFEST.json says what is inside and where it came from.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

from core.errors import ReportedError, cli_main

HERE = Path(__file__).resolve().parent
LIMIT_MIB = 60  # the archive must travel with the working tree (64 MiB of carried files)

# In every glibc system (the loader, libc and its split-off parts) or every base system's
# C++ runtime; bundling them would shadow the machine's own, newer ones. zlib too: in every
# base system (Debian: priority required), and the pip wheels' own libraries take it from
# there whatever the bundle holds.
BASE = {"linux-vdso.so.1", "ld-linux-x86-64.so.2", "libc.so.6", "libm.so.6",
        "libpthread.so.0", "libdl.so.2", "librt.so.1", "libutil.so.1", "libresolv.so.2",
        "libstdc++.so.6", "libgcc_s.so.1", "libz.so.1"}
# The CUDA runtime libraries: hundreds of MB, on every GPU machine; found at run time.
CUDA_RUNTIME = ("libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13", "libcurand.so.10")

# Packages copied from the venv: what the harness imports outside the tests. scipy is cut
# to the subpackages scipy.io and scipy.ndimage load (the .mat files, the synthetic data).
PACKAGES = ("numpy", "numpy.libs", "PIL", "pillow.libs", "google", "lmdb", "six.py", "tqdm")
SCIPY_PARTS = ("_lib", "io", "ndimage", "sparse", "special")
# Standard-library parts the harness never uses (and some that need a terminal or X).
STDLIB_LEFT_OUT = ("test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3",
                   "pydoc_data", "site-packages", "dist-packages", "unittest/test")
DYNLOAD_LEFT_OUT = re.compile(r"^(_test|_xx|xx|_tkinter|_curses|readline|_dbm|_gdbm|nis|"
                              r"ossaudiodev|audioop|_ctypes_test|_crypt)")  # _crypt: glibc 2.36
SKIP_NAMES = shutil.ignore_patterns("__pycache__", "tests", "*.pyc")


def run(*command: str, **kwargs) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True,
                          **kwargs).stdout


def is_elf(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


def needed(path: Path, env: dict[str, str]) -> dict[str, Path | None]:
    """Every shared library `path` loads (ldd: the whole closure), name → file or None."""
    found: dict[str, Path | None] = {}
    for line in run("ldd", str(path), env=env).splitlines():
        line = line.strip()
        if "=>" in line:
            name, target = (s.strip() for s in line.split("=>", 1))
            found[name] = None if target.startswith("not found") else Path(target.split()[0])
        elif line.split() and "/" in line.split()[0]:
            found[Path(line.split()[0]).name] = Path(line.split()[0])
    return found


class Bundle:
    def __init__(self, root: Path, env: dict[str, str]):
        self.root, self.env = root, env
        self.lib = root / "lib"
        self.lib.mkdir(parents=True)
        self.ours: list[tuple[Path, str]] = []  # ELF files whose RUNPATH we set
        self.libraries: dict[str, str] = {}     # bundled library → where it came from
        self.cuda_folders: set[str] = set()     # where this machine's CUDA libraries are

    def add_elf(self, source: Path, dest: Path, runpath: str) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source.resolve(), dest)
        dest.chmod(dest.stat().st_mode | 0o200)
        self.ours.append((dest, runpath))
        self.add_dependencies(source)

    def add_dependencies(self, binary: Path) -> None:
        for name, path in needed(binary, self.env).items():
            if name in CUDA_RUNTIME and path is not None:
                self.cuda_folders.add(str(path.parent))
            if name in BASE or name in CUDA_RUNTIME or name in self.libraries:
                continue
            if path is None:
                raise ReportedError(f"{binary} needs {name}, which ldd does not find here; "
                                    f"build the entry again (make caffe)")
            self.libraries[name] = str(path)
            dest = self.lib / name
            shutil.copy2(path.resolve(), dest)
            dest.chmod(dest.stat().st_mode | 0o200)
            self.ours.append((dest, "$ORIGIN"))

    def set_runpaths(self) -> None:
        for path, runpath in self.ours:
            run("patchelf", "--set-rpath", runpath, str(path))


def python_parts(bundle: Bundle, venv: Path) -> dict:
    """The interpreter, its libpython and standard library, and the pinned packages."""
    base = Path(sysconfig.get_config_var("installed_base") or sys.base_prefix)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    bundle.add_elf(Path(sys._base_executable).resolve(), bundle.root / "bin" / version,
                   "$ORIGIN/../lib")
    stdlib = base / "lib" / version
    dest = bundle.lib / version
    shutil.copytree(stdlib, dest, symlinks=False, ignore=shutil.ignore_patterns(
        "__pycache__", "*.pyc", *STDLIB_LEFT_OUT, "config-*"))
    for module in sorted((dest / "lib-dynload").iterdir()):
        if DYNLOAD_LEFT_OUT.match(module.name):
            module.unlink()
        else:
            bundle.ours.append((module, "$ORIGIN/../.."))
            bundle.add_dependencies(module)
    site = dest / "site-packages"
    venv_site = Path(run(str(venv / "bin/python"), "-c",
                         "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())
    for name in PACKAGES:
        source = venv_site / name
        if source.is_dir():
            shutil.copytree(source, site / name, ignore=SKIP_NAMES)
        else:
            site.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, site / name)
    scipy = venv_site / "scipy"
    (site / "scipy").mkdir()
    for item in scipy.iterdir():
        if item.is_file():
            shutil.copy2(item, site / "scipy" / item.name)
        elif item.name in SCIPY_PARTS:
            shutil.copytree(item, site / "scipy" / item.name, ignore=SKIP_NAMES)
    shutil.copytree(venv_site / "scipy.libs", site / "scipy.libs")
    versions = json.loads(run(str(venv / "bin/python"), "-c", (
        "import json, importlib.metadata as m; print(json.dumps({p: m.version(p) for p in "
        "('numpy', 'scipy', 'pillow', 'protobuf', 'lmdb', 'six', 'tqdm')}))")))
    return {"python": sys.version.split()[0], "from": str(base), "packages": versions}


def caffe_parts(bundle: Bundle, entry: Path) -> None:
    """pycaffe, libcaffe, the caffe tool, the gtest binary and the files its tests read."""
    site = bundle.lib / f"python{sys.version_info.major}.{sys.version_info.minor}" / \
        "site-packages"
    shutil.copytree(entry / "src/python/caffe", site / "caffe", symlinks=False,
                    ignore=shutil.ignore_patterns("__pycache__", "test", "imagenet",
                                                  "_caffe.cpp", "_caffe.so"))
    bundle.add_elf(entry / "build/lib/libcaffe.so.1.0.0", bundle.lib / "libcaffe.so.1.0.0",
                   "$ORIGIN")
    bundle.libraries["libcaffe.so.1.0.0"] = str(entry / "build/lib/libcaffe.so.1.0.0")
    bundle.add_elf(entry / "build/lib/_caffe.so", site / "caffe/_caffe.so", "$ORIGIN/../../..")
    bundle.add_elf(entry / "build/tools/caffe", bundle.root / "bin/caffe", "$ORIGIN/../lib")
    bundle.add_elf(entry / "build/test/test.testbin", bundle.root / "bin/test.testbin",
                   "$ORIGIN/../lib")
    # the gtests read these relative to Caffe's source root (their working directory)
    for part in ("src/caffe/test/test_data", "examples/images"):
        shutil.copytree(entry / "src" / part, bundle.root / "caffe-src" / part)


def newest_versions(root: Path) -> dict[str, str]:
    """The newest glibc and libstdc++ symbol versions any ELF file in `root` asks for: the
    oldest system the bundle runs on (bin/python checks glibc's before it starts)."""
    newest: dict[str, tuple[int, ...]] = {}
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and is_elf(path):
            symbols = run("objdump", "-T", str(path))
            for prefix, version in re.findall(r"\b(GLIBC|GLIBCXX)_([0-9.]+)\b", symbols):
                parts = tuple(int(x) for x in version.split(".") if x)
                newest[prefix] = max(newest.get(prefix, ()), parts)
    return {prefix: ".".join(map(str, v)) for prefix, v in sorted(newest.items())}


def entry_flavour(entry: Path) -> str:
    return "cuda" if "libcudart" in run("ldd", str(entry / "build/lib/libcaffe.so")) else "cpu"


def bundle_name(entry: Path) -> str:
    """caffe-cuda90-<key> → fcn-caffe-cuda90 (caffe-cpu-<key> → fcn-caffe-cpu)."""
    return f"fcn-caffe-{entry.name.split('-')[1]}"


def make(entry: Path, venv: Path, out: Path, archive: bool) -> dict:
    flavour = entry_flavour(entry)
    name = bundle_name(entry)
    root = out / name
    partial = out / f".{name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    for old in (f"{name}.tar.xz", f"{name}.tar.xz.sha256"):  # never beside a newer folder
        (out / old).unlink(missing_ok=True)
    env = dict(os.environ)
    bundle = Bundle(partial, env)
    manifest = {"entry": entry.name, "flavour": flavour,
                "python": python_parts(bundle, venv)}
    caffe_parts(bundle, entry)
    bundle.set_runpaths()
    shutil.copy2(HERE / "bundle-python.sh", partial / "bin/python")
    (partial / "bin/python").chmod(0o755)
    manifest["libraries"] = dict(sorted(bundle.libraries.items()))
    manifest["needs"] = newest_versions(partial)
    # for tests/test_gpu_bundle.py on this machine; the GPU machine's bin/python searches
    manifest["cuda_folders_where_built"] = sorted(bundle.cuda_folders)
    manifest["left_to_the_machine"] = sorted(BASE - {"linux-vdso.so.1"}) + (
        list(CUDA_RUNTIME) if flavour == "cuda" else [])
    manifest["bytes"] = sum(f.stat().st_size for f in partial.rglob("*") if f.is_file())
    (partial / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n")
    shutil.rmtree(root, ignore_errors=True)
    (partial / ".unpacked").write_text("")  # gpu-check.sh: a whole folder, use it
    partial.rename(root)
    if archive:
        tarball = out / f"{name}.tar.xz"
        part = tarball.with_suffix(".xz.partial")
        with tarfile.open(part, "w:xz", preset=6) as tar:
            tar.add(root, arcname=name)
        part.rename(tarball)
        digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
        (out / f"{name}.tar.xz.sha256").write_text(f"{digest}  {tarball.name}\n")
        manifest["archive"] = str(tarball)
        manifest["archive_bytes"] = tarball.stat().st_size
        manifest["archive_sha256"] = digest
    return manifest


@cli_main("gpu-bundle")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entry", type=Path, required=True,
                        help="a finished cache entry of this recipe (build.sh --print-dir)")
    parser.add_argument("--venv", type=Path, default=HERE.parent / ".venv")
    parser.add_argument("--out", type=Path, default=HERE.parent / "gpu-bundle")
    parser.add_argument("--no-archive", action="store_true",
                        help="the folder only (the tests' CPU bundle)")
    args = parser.parse_args(argv)
    if shutil.which("patchelf") is None:
        parser.error("patchelf is not installed (apt-get install patchelf; make gpu-bundle "
                     "installs it)")
    if not (args.entry / "build/lib/libcaffe.so.1.0.0").exists():
        parser.error(f"{args.entry} is not a finished Caffe build (no build/lib/libcaffe.so)")
    if not (args.venv / "bin/python").exists():
        parser.error(f"{args.venv} is not a venv (no bin/python): make venv, or --venv <path>")
    args.out.mkdir(parents=True, exist_ok=True)
    manifest = make(args.entry.resolve(), args.venv, args.out.resolve(), not args.no_archive)
    mib = manifest["bytes"] / 2**20
    print(f"gpu-bundle: {args.out / bundle_name(args.entry)}: "
          f"{mib:.0f} MiB, {len(manifest['libraries'])} libraries bundled")
    if "archive" in manifest:
        size = manifest["archive_bytes"] / 2**20
        print(f"gpu-bundle: {manifest['archive']}: {size:.1f} MiB "
              f"(limit {LIMIT_MIB} MiB), sha256 {manifest['archive_sha256'][:16]}…")
        if size > LIMIT_MIB:
            raise ReportedError(f"the archive is {size:.1f} MiB, over the {LIMIT_MIB} MiB "
                                f"that can travel to the GPU machine")
    return 0


if __name__ == "__main__":
    sys.exit(main())
