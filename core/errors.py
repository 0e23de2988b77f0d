"""The one way an entry point fails: the project's errors share one base, and cli_main turns
them into one `<prog>: error: …` line and one exit code. An error of the operating system
(a folder not writable, a full disk, the file-size limit) is reported the same way, with
the file, what was being done and the fix (describe_os_error), never as a bare
`[Errno N] …`."""

from __future__ import annotations

import errno
import functools
import os
import resource
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from core import defaults


class ReportedError(Exception):
    """A failure the project expects and explains: its message is the whole report, so an
    entry point prints it in one line instead of a traceback. `exit_code` is the status it
    exits with where that differs on purpose from the entry point's own (a diverged training
    exits 3); None keeps the entry point's."""

    exit_code: int | None = None


class InputError(ReportedError, ValueError):
    """A file or argument that cannot be used; the message names it, the cause and the fix."""


def cli_main(prog: str, exit_code: int = 1,
             also: tuple[type[BaseException], ...] = ()) -> Callable[[Callable[..., int]],
                                                                    Callable[..., int]]:
    """Decorate every entry point's main(): a ReportedError (and the exceptions in `also`,
    which that entry point reports as they are) becomes one `<prog>: error: …` line on
    stderr and the error's own exit code or `exit_code`, never a traceback; so does an
    OSError, the machine's (a permission, a full disk, a limit), in describe_os_error's
    words. argparse's usage errors still exit 2, signals keep the codes main() returns for
    them, and any other exception is a bug and keeps its traceback."""
    caught = (ReportedError, OSError, *also)

    def decorate(main: Callable[..., int]) -> Callable[..., int]:
        @functools.wraps(main)
        def run(*args, **kwargs) -> int:
            try:
                return main(*args, **kwargs)
            except caught as e:
                message = describe_os_error(e) if isinstance(e, OSError) else str(e)
                print(f"{prog}: error: {message}", file=sys.stderr)
                code = getattr(e, "exit_code", None)
                return exit_code if code is None else code
        run.cli_prog = prog  # what tests/test_architecture.py checks every main() has
        return run
    return decorate


def check_writable(path: Path | str, option: str = "the output option") -> None:
    """Raise InputError before any work if the file `path` cannot be written there (its
    folder is made if missing; nothing is left behind): a read-only output path must not
    cost a whole run and then a traceback."""
    path = Path(path)
    try:
        existed = path.exists()  # raises too for a name the system refuses (too long)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a"):
            pass
        if not existed:
            path.unlink(missing_ok=True)
    except OSError as e:
        raise InputError(f"{path}: cannot be written ({e.strerror}); give another path "
                         f"({option})") from None


PROBE_PREFIX = ".fcn-output-probe-"   # check_writable_folder's probe files


def check_writable_folder(folder: Path | str, option: str = "the output option") -> None:
    """Raise InputError before any work if files cannot be made in `folder` (made if
    missing). The probe file has a name of this process's own: processes probing one folder
    at once (`make paper JOBS=2` workers starting chains in one runs folder) each remove
    only their own, so none reports a writable folder unwritable or leaves one behind."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=PROBE_PREFIX, dir=folder)
        os.close(handle)
        os.unlink(probe)
    except OSError as e:
        raise InputError(f"{folder}: cannot be written ({e.strerror}); give another path "
                         f"({option})") from None


# --- errors of the operating system, in words -------------------------------------------
# errors of where a file goes, not of the file read: a full disk, a limit, permissions
MACHINE_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EACCES, errno.EPERM,
                            errno.EROFS})


def _size(count: int) -> str:
    if count >= 2**20:
        return f"{count / 2**20:.1f} MiB"
    return f"{count / 2**10:.1f} KiB" if count >= 2**10 else f"{count} bytes"


def _free_space(path: Path | None) -> str:
    """ ('N MiB free there') for the nearest existing folder of `path`, or ''."""
    folder = Path(path).parent if path else None
    while folder is not None and not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return f" ({_size(shutil.disk_usage(folder).free)} free there)" if folder else ""
    except OSError:
        return ""


def _user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return str(os.getuid())


def _fix(e: OSError, path: Path | None) -> str:
    """What the user can do about the error `e` met at `path`."""
    folder = path.parent if path else None
    if e.errno in (errno.EACCES, errno.EPERM):
        return (f"give a path this user ({_user()}) may use, or change the permissions of "
                f"{path or 'the file'} or its folder")
    if e.errno == errno.EROFS:
        return "the file system is read-only: give a path on a writable one"
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"the disk{' quota' if e.errno == errno.EDQUOT else ''} is full"
                f"{_free_space(path)}: free some space or give a path on another disk")
    if e.errno == errno.EFBIG:
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        shown = "unlimited" if limit == resource.RLIM_INFINITY else _size(limit)
        return (f"the file-size limit (ulimit -f) is {shown}: raise it (ulimit -f unlimited) "
                f"and run the same command again")
    if e.errno == errno.ENOENT:
        return f"check the path{f' (is {folder} there?)' if folder else ''}"
    if e.errno == errno.ENOTDIR:
        return "a part of the path is a file, not a folder: check the path"
    if e.errno == errno.EISDIR:
        return "it is a folder where a file is expected: give a file"
    if e.errno == errno.EEXIST:
        return "remove it or give another path"
    if e.errno in (errno.EMFILE, errno.ENFILE):
        return "too many open files: raise the limit (ulimit -n)"
    if e.errno == errno.ENOMEM:
        return "not enough memory: free some, or raise the limit (ulimit -v)"
    if e.errno in (errno.ECONNREFUSED, errno.ECONNRESET, errno.ETIMEDOUT, errno.ENETUNREACH,
                   errno.EHOSTUNREACH):
        return "check the network and the server, or run again later"
    return "check the path and the machine's limits" if path else "check the machine's limits"


def _where(e: BaseException) -> str:
    """The project's function the error came out of (module.function), from the traceback."""
    found, tb = "", e.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        try:
            inside = Path(code.co_filename).resolve().is_relative_to(defaults.REPO) and \
                ".venv" not in Path(code.co_filename).parts
        except OSError:
            inside = False
        if inside:
            spec = tb.tb_frame.f_globals.get("__spec__")  # `python -m x.y` runs as __main__
            module = spec.name if spec else tb.tb_frame.f_globals.get("__name__", "")
            found = f"{module}.{code.co_name}" if module else code.co_name
        tb = tb.tb_next
    return found


def describe_os_error(e: OSError, action: str | None = None) -> str:
    """One line for an error of the operating system: the file, the cause, what was being
    done and the fix, e.g. "out/a.png: No space left on device (while writing the
    predictions, in evaluation.infer.segment_files); the disk is full (…): free some space …".
    The project's own OSErrors, whose text already says all that, keep their text (without
    Python's "[Errno N]" prefix)."""
    if isinstance(e, ReportedError) or e.errno is None:
        return str(e)
    if e.strerror and e.strerror != os.strerror(e.errno) and e.filename is None:
        return e.strerror  # the project's own words (OSError(errno, message))
    path = Path(os.fsdecode(e.filename)) if e.filename is not None else None
    action = action or getattr(e, "doing", None)
    where = _where(e)
    context = ", ".join(part for part in (f"while {action}" if action else "",
                                          f"in {where}" if where else "") if part)
    target = f"{path}" + (f" → {os.fsdecode(e.filename2)}" if e.filename2 else "") + ": " \
        if path else ""
    cause = e.strerror or os.strerror(e.errno)
    return f"{target}{cause}{f' ({context})' if context else ''}; {_fix(e, path)}"


@contextmanager
def doing(what: str, path: Path | str | None = None) -> Iterator[None]:
    """Say what the code inside was doing (and on which file, for an error that names none,
    such as a write to a full disk) when an OSError comes out of it: cli_main's message
    then names both. The error itself passes through."""
    try:
        yield
    except OSError as e:
        if getattr(e, "doing", None) is None:
            e.doing = what
        if e.filename is None and path is not None:
            e.filename = os.fspath(path)
        raise


@contextmanager
def writing(path: Path | str, what: str) -> Iterator[None]:
    """doing(what, path) for code that writes the file `path`; a file it began and could
    not finish (a full disk, the file-size limit) is removed, never left half-written."""
    path = Path(path)
    existed = path.exists()
    try:
        with doing(what, path):
            yield
    except OSError:
        if not existed:
            path.unlink(missing_ok=True)
        raise


def reason(e: BaseException) -> str:
    """An exception's cause for a message that names the file itself: an OSError's
    cause and fix without Python's "[Errno N]" and the repeated path, else str(e)."""
    if isinstance(e, OSError) and e.errno is not None and not isinstance(e, ReportedError):
        return f"{e.strerror or os.strerror(e.errno)}; {_fix(e, None)}"
    return str(e)
