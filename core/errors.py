"""The one way an entry point fails: the project's errors share one base, and cli_main turns
them into one `<prog>: error: …` line and one exit code."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path


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
    stderr and the error's own exit code or `exit_code`, never a traceback. argparse's usage
    errors still exit 2, signals keep the codes main() returns for them, and any other
    exception is a bug and keeps its traceback."""
    caught = (ReportedError, *also)

    def decorate(main: Callable[..., int]) -> Callable[..., int]:
        @functools.wraps(main)
        def run(*args, **kwargs) -> int:
            try:
                return main(*args, **kwargs)
            except caught as e:
                print(f"{prog}: error: {e}", file=sys.stderr)
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
            path.unlink()
    except OSError as e:
        raise InputError(f"{path}: cannot be written ({e.strerror}); give another path "
                         f"({option})") from None
