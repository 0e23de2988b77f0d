"""The one exception the zoo tools raise for bad input, so CLIs can report it in one line."""


class ZooError(ValueError):
    """Input that cannot be exported, imported or compared; the message names file and cause."""
