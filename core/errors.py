"""The one base class for input the project cannot use, so every CLI reports it in one line."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable


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
