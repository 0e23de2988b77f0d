"""The one exception the comparison tools raise for bad input, so the CLI reports it in one
line (exit 2, where a difference exits 1)."""

from core.errors import InputError


class CompareError(InputError):
    """Input that cannot be compared; the message names the file and the cause."""
