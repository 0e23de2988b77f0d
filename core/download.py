"""Resumable, checksum-verified HTTP downloads for datasets and pretrained weights.

One implementation for every fetch in the project (datasets, classifier weights, zoo
imports): a partial file survives a cut connection and is resumed with a Range request,
the result is verified before it is renamed into place, and an unreachable host gives a
message that says where to put the file by hand.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

CHUNK = 1 << 20


class DownloadError(RuntimeError):
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


def _fetch_once(url: str, part: Path, timeout: float, show: bool) -> None:
    """Append the rest of `url` to `part`, resuming from its current size."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "fcn-caffe/1"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # the part is already whole; verification decides
            return
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
                    block = response.read(CHUNK)
                    if not block:
                        break
                    out.write(block)
                    bar.update(len(block))
        finally:
            bar.close()
        if total is not None and part.stat().st_size < total:
            raise http.client.IncompleteRead(b"", total - part.stat().st_size)


def fetch(url: str, dest: Path | str, *, sha256: str | None = None, sha1: str | None = None,
          md5: str | None = None, size: int | None = None, retries: int = 3,
          timeout: float = 60.0, progress: bool = True) -> Path:
    """Download `url` to `dest` unless a verified copy is already there; return `dest`.

    Interrupted transfers resume from `dest.part`. A checksum mismatch removes the part
    file and raises; so does an unreachable server, with the path to fill by hand.
    """
    dest = Path(dest)
    checks = dict(sha256=sha256, sha1=sha1, md5=md5, size=size)
    if dest.exists():
        verify(dest, **checks, source=f"existing file (delete it to fetch {url} again)")
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    last_error: Exception | None = None
    for attempt in range(retries + 1):
        try:
            _fetch_once(url, part, timeout, progress)
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
        if attempt < retries:
            time.sleep(min(2.0 ** attempt * 0.2, 5.0))
    if last_error is not None:
        raise DownloadError(
            f"{url}: transfer kept failing after {retries + 1} tries ({last_error!r}); "
            f"the partial file {part} is kept and will be resumed") from last_error
    try:
        verify(part, **checks, source=url)
    except DownloadError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, dest)
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("dest", type=Path)
    parser.add_argument("--sha256")
    parser.add_argument("--sha1")
    parser.add_argument("--md5")
    parser.add_argument("--size", type=int)
    args = parser.parse_args(argv)
    try:
        fetch(args.url, args.dest, sha256=args.sha256, sha1=args.sha1, md5=args.md5,
              size=args.size)
    except DownloadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(args.dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
