"""The one exception the zoo tools raise for bad input, so CLIs can report it in one line."""

from core.errors import InputError


class ZooError(InputError):
    """Input that cannot be exported, imported or compared; the message names file and cause."""
