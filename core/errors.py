"""The one base class for input the project cannot use, so every CLI reports it in one line."""


class InputError(ValueError):
    """A file or argument that cannot be used; the message names it, the cause and the fix."""
