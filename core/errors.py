"""The one base class for input the project cannot use, so every CLI reports it in one line."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path


class InputError(ValueError):
    """A file or argument that cannot be used; the message names it, the cause and the fix."""


def reports_input_errors(exit_code: int = 1):
    """Decorate a CLI's main(): an InputError becomes one `error: …` line on stderr and
    `exit_code`, never a traceback (argparse's own usage errors still exit 2)."""
    def decorate(main: Callable[..., int]) -> Callable[..., int]:
        @functools.wraps(main)
        def run(*args, **kwargs) -> int:
            try:
                return main(*args, **kwargs)
            except InputError as e:
                print(f"error: {e}", file=sys.stderr)
                return exit_code
        return run
    return decorate


def check_writable(path: Path | str, option: str = "the output option") -> None:
    """Raise InputError before any work if the file `path` cannot be written there (its
    folder is made if missing; nothing is left behind): a read-only output path must not
    cost a whole run and then a traceback."""
    path = Path(path)
    existed = path.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a"):
            pass
        if not existed:
            path.unlink()
    except OSError as e:
        raise InputError(f"{path}: cannot be written ({e.strerror}); give another path "
                         f"({option})") from None
