"""Check a CUDA build of Caffe without a GPU: the artifacts exist, link the CUDA libraries, and
carry device code for the requested architecture.

`make caffe-cuda-check` runs this on the cache entry build.sh made. No GPU is needed: the
loader's view (ldd), the ELF's NEEDED entries (readelf) and the fatbinary that nvcc embeds in
libcaffe.so (section .nv_fatbin) say everything a compile-and-link check can say. The
fatbinary is read directly because cuobjdump is not part of every CUDA install (not of the
pip-based one here).
"""

from __future__ import annotations

import argparse
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from core.errors import ReportedError, cli_main

ARTIFACTS = ("build/lib/libcaffe.so", "build/lib/_caffe.so", "build/tools/caffe",
             "build/test/test.testbin")
CUDA_LIBS = ("libcudart", "libcublas", "libcurand")
FATBIN_MAGIC = 0xBA55ED50
KIND_NAMES = {1: "PTX", 2: "ELF"}


class CheckError(ReportedError):
    """The build is not a complete CUDA build; the message says which file and why."""


@dataclass(frozen=True)
class DeviceCode:
    """One entry of a fatbinary: PTX (kind 1) or a cubin (ELF, kind 2) for one architecture."""

    kind: int
    arch: int

    def __str__(self) -> str:
        prefix = "sm" if self.kind == 2 else "compute"
        return f"{KIND_NAMES.get(self.kind, f'kind{self.kind}')} {prefix}_{self.arch}"


def parse_ldd(text: str) -> dict[str, str | None]:
    """Map each library ldd names to the path it resolved to (None for 'not found')."""
    libs: dict[str, str | None] = {}
    for line in text.splitlines():
        if "=>" not in line:
            continue
        name, _, target = (part.strip() for part in line.partition("=>"))
        libs[name] = None if target.startswith("not found") else target.split(" (")[0]
    return libs


def elf_section(path: Path, name: str) -> bytes:
    """The bytes of one section of a 64-bit little-endian ELF file (raises if it is absent)."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise CheckError(f"{path} is not a 64-bit little-endian ELF file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def header(i: int) -> tuple[int, int, int]:
        name_off, = struct.unpack_from("<I", data, shoff + i * shentsize)
        offset, size = struct.unpack_from("<QQ", data, shoff + i * shentsize + 0x18)
        return name_off, offset, size

    _, strtab_off, strtab_size = header(shstrndx)
    strtab = data[strtab_off:strtab_off + strtab_size]
    for i in range(shnum):
        name_off, offset, size = header(i)
        if strtab[name_off:strtab.index(b"\0", name_off)].decode() == name:
            return data[offset:offset + size]
    raise CheckError(f"{path} has no {name} section: it carries no CUDA device code")


def parse_fatbin(blob: bytes) -> list[DeviceCode]:
    """List the entries of the concatenated fatbinaries in an .nv_fatbin section.

    Layout (stable since CUDA 4): a 16-byte container header (magic, version, header size,
    payload size) followed by entries whose headers give kind, header size, payload size and,
    at byte 28, the architecture as major*10+minor.
    """
    codes: list[DeviceCode] = []
    pos = 0
    while pos + 16 <= len(blob):
        magic, _version, header_size, payload = struct.unpack_from("<IHHQ", blob, pos)
        if magic != FATBIN_MAGIC:
            if not any(blob[pos:pos + 8]):  # alignment padding between containers
                pos += 8
                continue
            raise CheckError(f"unexpected bytes at offset {pos} of the fatbinary "
                             f"(magic {magic:#x})")
        entry, end = pos + header_size, pos + header_size + payload
        while entry < end:
            kind, _, entry_header, entry_size = struct.unpack_from("<HHIQ", blob, entry)
            arch, = struct.unpack_from("<I", blob, entry + 28)
            codes.append(DeviceCode(kind, arch))
            entry += entry_header + entry_size
        pos = end
    return codes


def check_links(path: Path) -> dict[str, str]:
    """ldd's resolution of the CUDA libraries for one artifact; raises if any library is missing."""
    result = subprocess.run(["ldd", str(path)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise CheckError(f"ldd {path} failed: {result.stderr.strip() or result.stdout.strip()}")
    libs = parse_ldd(result.stdout)
    missing = sorted(name for name, target in libs.items() if target is None)
    if missing:
        raise CheckError(f"{path} needs {', '.join(missing)}, which the loader cannot find")
    found = {}
    for stem in CUDA_LIBS:
        names = [name for name in libs if name.startswith(stem + ".so")]
        if not names:
            raise CheckError(f"{path} does not link {stem}: not a CUDA build")
        found[names[0]] = libs[names[0]]
    return found


def needed(path: Path) -> list[str]:
    """The NEEDED entries of an ELF file's dynamic section (readelf -d)."""
    out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True,
                         check=True).stdout
    return [line.split("[", 1)[1].rstrip("]") for line in out.splitlines() if "(NEEDED)" in line]


def check_build(entry: Path, arch: int) -> list[str]:
    """Check one cache entry; return the report lines (raises CheckError on the first problem)."""
    report = []
    for rel in ARTIFACTS:
        path = entry / rel
        if not path.exists():
            raise CheckError(f"{path} is missing: the build did not finish (see {entry}/build.log)")
        links = check_links(path)
        report.append(f"{rel}: " + ", ".join(f"{k} => {v}" for k, v in sorted(links.items())))
    lib = entry / ARTIFACTS[0]
    direct = [n for n in needed(lib) if n.startswith(CUDA_LIBS)]
    if len(direct) < len(CUDA_LIBS):
        raise CheckError(f"{lib} lists only {direct} among its NEEDED libraries")
    report.append(f"libcaffe.so NEEDED: {', '.join(direct)}")
    codes = parse_fatbin(elf_section(lib.resolve(), ".nv_fatbin"))
    cubins = sum(1 for c in codes if c == DeviceCode(2, arch))
    ptx = sum(1 for c in codes if c == DeviceCode(1, arch))
    found = sorted({str(c) for c in codes})
    others = [c for c in found if c not in (str(DeviceCode(2, arch)), str(DeviceCode(1, arch)))]
    if cubins == 0:
        raise CheckError(f"{lib} carries no sm_{arch} code (found: {', '.join(found) or 'none'})")
    report.append(f"libcaffe.so device code: {cubins} sm_{arch} cubins, {ptx} compute_{arch} PTX"
                  + (f", also {', '.join(others)}" if others else ""))
    return report


@cli_main("caffe-cuda-check")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("entry", type=Path, help="cache entry (build.sh --print-dir with CUDA=1)")
    parser.add_argument("--arch", type=int, default=90, help="compute capability, e.g. 90")
    args = parser.parse_args(argv)
    lines = check_build(args.entry, args.arch)
    for line in lines:
        print(f"caffe-cuda-check: {line}")
    print(f"caffe-cuda-check: CUDA build for sm_{args.arch} at {args.entry} is complete")
    return 0


if __name__ == "__main__":
    sys.exit(main())
