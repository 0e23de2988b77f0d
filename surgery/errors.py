"""The one exception surgery raises for weights or definitions that do not fit."""

from core.errors import InputError


class SurgeryError(InputError):
    """Weights that do not fit the net they are meant for, or a net surgery cannot handle.

    The message names the file or layer and says what was expected and what was found.
    """
