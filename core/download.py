"""Resumable, verified HTTP downloads for datasets and pretrained weights.

One implementation for every fetch in the project (datasets, classifier weights, zoo
imports): a partial file survives a cut connection and is resumed with a Range request,
the result is verified before it is renamed into place, and an unreachable host gives a
message that says where to put the file by hand.

A `.part` is promoted only when something proves it whole: a known digest or size, the
server's Content-Length reached, or a structural check (an archive lists to its end, a
.mat loads, a caffemodel parses, or the caller's own check). A server that sends no
length for a file with no known digest and no check is refused: a cut transfer would
look complete. The sha256 of every accepted file is recorded beside it (<file>.sha256);
a re-run re-verifies the file against it instead of trusting it, and a file that fails
is moved aside to <file>.rejected, with a message that says so, and fetched again.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import socket
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

from core.errors import ReportedError, cli_main

CHUNK = 1 << 20
SIDECAR = ".sha256"
REJECTED = ".rejected"


class DownloadError(ReportedError, RuntimeError):
    """A download that could not be completed or verified; the message says what to do."""


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file, read in chunks (weights files are hundreds of MB)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _expected(sha256: str | None, sha1: str | None, md5: str | None) -> dict[str, str]:
    wanted = {"sha256": sha256, "sha1": sha1, "md5": md5}
    return {k: v.lower() for k, v in wanted.items() if v}


def verify(path: Path, *, sha256: str | None = None, sha1: str | None = None,
           md5: str | None = None, size: int | None = None, source: str = "") -> None:
    """Raise DownloadError naming the file if its size or any given digest differs."""
    path = Path(path)
    origin = f" from {source}" if source else ""
    if size is not None and path.stat().st_size != size:
        raise DownloadError(
            f"{path}{origin}: expected {size} bytes, found {path.stat().st_size}")
    for algorithm, want in _expected(sha256, sha1, md5).items():
        got = file_digest(path, algorithm)
        if got != want:
            raise DownloadError(
                f"{path}{origin}: checksum mismatch, expected {algorithm} {want}, got {got}")


def _progress(total: int | None, initial: int, name: str, enabled: bool):
    try:
        from tqdm import tqdm
    except ImportError:  # the venv has it; a bare interpreter still downloads
        enabled = False
    if not enabled:
        class _Quiet:
            def update(self, n: int) -> None: ...
            def close(self) -> None: ...
        return _Quiet()
    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, desc=name,
                file=sys.stderr, leave=False)


class _OutOfTime(TimeoutError):
    """The whole download's time budget ran out (a server trickling bytes never trips the
    per-read timeout)."""


def _fetch_once(url: str, part: Path, timeout: float, show: bool,
                deadline: float = float("inf")) -> bool | None:
    """Append the rest of `url` to `part`, resuming from its current size; every connect
    and read waits at most `timeout` seconds, and the transfer stops at `deadline`
    (time.monotonic). Returns True when the server said how long the file is and the part
    has that length, None when it did not say."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "fcn-caffe/1"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # the part is already whole; verification decides
            return None
        raise
    with response:
        if have and response.status != 206:  # server ignored the Range: start over
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        bar = _progress(total, have, part.name.removesuffix(".part"), show)
        try:
            with open(part, "ab" if have else "wb") as out:
                while True:
                    if time.monotonic() > deadline:
                        raise _OutOfTime()
                    block = response.read1(CHUNK)
                    if not block:
                        break
                    out.write(block)
                    bar.update(len(block))
        finally:
            bar.close()
        if total is not None and part.stat().st_size < total:
            raise http.client.IncompleteRead(b"", total - part.stat().st_size)
        return True if total is not None else None


def structural_check(path: Path, name: str | None = None) -> str | None:
    """Check a file is whole by reading its structure to the end, by the kind its name
    says; return what was checked, None for a kind with no check. Raises ValueError."""
    name = (name or Path(path).name).lower()
    try:
        if name.endswith((".tar", ".tgz", ".tar.gz", ".tar.bz2", ".tar.xz")):
            with tarfile.open(path) as archive:
                count = sum(1 for _ in archive)  # reads every header, decompressing all
                # listing stops at the end-of-archive blocks; the compressed stream's own
                # check (gzip's CRC and length, bzip2's and xz's) is read only at its end
                while archive.fileobj.read(CHUNK):
                    pass
            return f"tar archive lists completely ({count} members) and its stream checks"
        if name.endswith(".zip"):
            with zipfile.ZipFile(path) as archive:
                broken = archive.testzip()
            if broken is not None:
                raise ValueError(f"member {broken} fails its CRC")
            return "zip archive reads completely (every member's CRC)"
        if name.endswith(".mat"):
            return _check_mat(Path(path))
        if name.endswith(".caffemodel"):
            # Caffe loads on use, so this module imports without it
            from caffe.proto import caffe_pb2

            net = caffe_pb2.NetParameter()
            net.ParseFromString(Path(path).read_bytes())
            if not any(layer.blobs for layer in net.layer) and \
                    not any(layer.blobs for layer in net.layers):
                raise ValueError("no layer with weights")
            return "caffemodel parses to its end"
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError) as e:
        raise ValueError(f"not a whole {Path(name).suffix or 'file'} ({e})") from None
    except Exception as e:  # protobuf's DecodeError, scipy's and h5py's errors
        if isinstance(e, ValueError) and str(e).startswith("no layer"):
            raise
        raise ValueError(f"not a whole {Path(name).suffix} file ({type(e).__name__}: "
                         f"{e})") from None
    return None


def _check_mat(path: Path) -> str:
    """A MATLAB file: v5 loads with scipy; v7.3 is HDF5, whose superblock states where the
    file ends, so a cut one is caught without an HDF5 library."""
    with open(path, "rb") as f:
        head = f.read(4096)
    if head.startswith(HDF5) or b"MATLAB 7.3" in head[:128]:
        return _check_hdf5(path, head)
    import scipy.io

    scipy.io.loadmat(path)
    return ".mat file loads"


HDF5 = b"\x89HDF\r\n\x1a\n"


def _check_hdf5(path: Path, head: bytes) -> str:
    """Compare the file's size with the end-of-file address of its HDF5 superblock."""
    for at in (0, 512, 1024, 2048):  # the superblock may follow a user block
        if head[at:at + 8] != HDF5:
            continue
        version = head[at + 8]
        # (offset of 'size of offsets', of the base address) per superblock version
        fields = {0: (13, 24), 1: (13, 28), 2: (9, 12), 3: (9, 12)}.get(version)
        if fields is None or head[at + fields[0]] != 8:
            return "HDF5 signature (its end not checkable here)"
        base_at = at + fields[1]
        eof_at = base_at + 16  # after the free-space (v0/1) or extension (v2/3) address
        base = int.from_bytes(head[base_at:base_at + 8], "little")
        end = base + int.from_bytes(head[eof_at:eof_at + 8], "little")
        size = path.stat().st_size
        if size < end:
            raise ValueError(f"HDF5 file of {size} bytes, its superblock says {end}")
        return f"HDF5 .mat file has the {end} bytes its superblock states"
    raise ValueError("a v7.3 .mat file without an HDF5 superblock")


def sidecar(dest: Path) -> Path:
    """Where the sha256 of an accepted file is recorded."""
    return Path(dest).with_name(Path(dest).name + SIDECAR)


def move_aside(path: Path, why: str) -> Path:
    """Rename a file that failed verification out of the way, saying so."""
    aside = path.with_name(path.name + REJECTED)
    os.replace(path, aside)
    print(f"{path}: {why}; moved aside to {aside}", file=sys.stderr)
    return aside


def _accept(path: Path, dest: Path, how: str) -> None:
    digest = file_digest(path, "sha256")
    os.replace(path, dest)
    sidecar(dest).write_text(f"{digest}  {dest.name}\n# verified by: {how}\n")


def _recorded(dest: Path) -> str | None:
    try:
        return sidecar(dest).read_text().split()[0]
    except (OSError, IndexError):
        return None


def _problem(path: Path, checks: dict, check: Callable[[Path], object] | None,
             recorded: str | None, source: str, name: str) -> tuple[str | None, str]:
    """(what is wrong or None, how the file was verified: '' when nothing could) for a
    file in place or a part; `name` is the final name (its suffix picks the check)."""
    pinned = any(checks[k] for k in ("sha256", "sha1", "md5"))
    try:
        if pinned or checks["size"] is not None:
            verify(path, **checks, source=source)
            if pinned:
                return None, "published checksum"
        if recorded is not None:
            got = file_digest(path, "sha256")
            if got != recorded:
                return (f"sha256 {got} differs from the {recorded} recorded when it was "
                        f"accepted"), ""
            return None, "recorded sha256"
        if check is not None:
            how = check(path)
            return None, how if isinstance(how, str) else "the caller's check"
        how = structural_check(path, name)
        if how is None and checks["size"] is not None:
            how = "published size"
        return None, how or ""
    except (DownloadError, ValueError) as e:
        return str(e), ""


def _waited_for(error: BaseException | None, timeout: float) -> str:
    """What the last try waited for, in words."""
    if isinstance(error, (socket.timeout, TimeoutError)) or isinstance(
            getattr(error, "reason", None), (socket.timeout, TimeoutError)):
        return f"no answer or no data for {timeout:g} s"
    return f"the connection broke: {error!r}"


def _say_stall(dest: Path, part: Path, error: BaseException | None, timeout: float,
               attempt: int, retries: int) -> None:
    """One line on stderr for every failed try, so a stalled transfer never looks like a
    frozen progress bar: what was waited for, how far the file got, what happens next."""
    have = part.stat().st_size if part.exists() else 0
    then = (f"resuming (try {attempt + 2} of {retries + 1})" if attempt < retries
            else "no tries left")
    print(f"download: {dest.name}: {_waited_for(error, timeout)} at {have} bytes; {then}",
          file=sys.stderr, flush=True)


def fetch(url: str, dest: Path | str, *, sha256: str | None = None, sha1: str | None = None,
          md5: str | None = None, size: int | None = None,
          check: Callable[[Path], object] | None = None, retries: int = 3,
          timeout: float = 30.0, budget: float = 3600.0, progress: bool = True) -> Path:
    """Download `url` to `dest` unless a verified copy is already there; return `dest`.

    Every connect and read waits at most `timeout` seconds, a cut or stalled transfer is
    resumed at most `retries` times (each failed try said on stderr), and the whole
    download stops after `budget` seconds, with one error saying what was waited for.

    Interrupted transfers resume from `dest.part`. `check(path)` (raising ValueError) is
    the structural check for a file with no known digest; by default one is chosen by the
    file's suffix (structural_check). A file that fails verification is moved aside and
    the fetch raises (a download) or starts over (a file already in place). An
    unreachable server says where to put the file by hand.
    """
    dest = Path(dest)
    checks = dict(sha256=sha256, sha1=sha1, md5=md5, size=size)
    if dest.exists():
        problem, how = _problem(dest, checks, check, _recorded(dest),
                                f"existing file (delete it to fetch {url} again)", dest.name)
        if problem is None:
            if _recorded(dest) is None:  # placed by hand: record what was accepted
                digest = file_digest(dest, "sha256")
                sidecar(dest).write_text(f"{digest}  {dest.name}\n# verified by: "
                                         f"{how or 'nothing (placed by hand)'}\n")
            return dest
        move_aside(dest, f"fails verification ({problem})")
        sidecar(dest).unlink(missing_ok=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    last_error: Exception | None = None
    whole_by_length = None
    began = time.monotonic()
    deadline = began + budget
    tries = 0
    for attempt in range(retries + 1):
        if time.monotonic() >= deadline:
            break
        tries += 1
        try:
            whole_by_length = _fetch_once(url, part, min(timeout, deadline - time.monotonic()),
                                          progress, deadline)
            last_error = None
            break
        except urllib.error.HTTPError as e:
            raise DownloadError(f"{url}: HTTP {e.code} {e.reason}; cannot fetch {dest}") from e
        except urllib.error.URLError as e:
            if isinstance(e.reason, (socket.timeout, TimeoutError, ConnectionResetError)):
                last_error = e
            else:
                raise DownloadError(
                    f"cannot reach {url} ({e.reason}). If this machine is offline, download "
                    f"the file elsewhere and put it at {dest}") from e
        except (http.client.HTTPException, ConnectionError, socket.timeout, TimeoutError) as e:
            last_error = e  # cut connection: resume from the part file
        if isinstance(last_error, _OutOfTime):
            break
        _say_stall(dest, part, last_error, timeout, attempt, retries)
        if attempt < retries:
            time.sleep(max(0.0, min(2.0 ** attempt * 0.2, 5.0, deadline - time.monotonic())))
    if last_error is not None or tries == 0:
        have = part.stat().st_size if part.exists() else 0
        why = (f"the time budget of {budget:g} s ran out"
               if isinstance(last_error, _OutOfTime) or time.monotonic() >= deadline
               else _waited_for(last_error, timeout))
        raise DownloadError(
            f"{url}: gave up after {tries} tr{'y' if tries == 1 else 'ies'} in "
            f"{time.monotonic() - began:.0f} s ({why}); the partial file {part} ({have} bytes) "
            f"is kept and the next run resumes it. Check the network or the server, or "
            f"download the file elsewhere and put it at {dest}") from last_error
    problem, how = _problem(part, checks, check, None, url, dest.name)
    if problem is not None:
        aside = move_aside(part, f"fails verification ({problem})")
        raise DownloadError(f"{url}: the download fails verification ({problem}); a cut "
                            f"transfer or the wrong file. Moved aside to {aside}; run again "
                            f"to fetch it anew")
    if not how:
        if not whole_by_length:
            raise DownloadError(
                f"{url}: the server sent no length and no checksum or check is known for "
                f"{dest.name}, so a cut transfer cannot be told from a whole one; the file "
                f"is kept at {part}. Give its published checksum (--sha256) or check it "
                f"by hand and rename it to {dest}")
        how = "the server's Content-Length"
    _accept(part, dest, how)
    return dest


@cli_main("download")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("dest", type=Path)
    parser.add_argument("--sha256")
    parser.add_argument("--sha1")
    parser.add_argument("--md5")
    parser.add_argument("--size", type=int)
    args = parser.parse_args(argv)
    fetch(args.url, args.dest, sha256=args.sha256, sha1=args.sha1, md5=args.md5, size=args.size)
    print(args.dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
