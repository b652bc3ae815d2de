"""The project's own error classes: what a user gave (a config, a file, data, an argument value) is unusable.

Every entry point runs through :func:`cli.run`, which prints an :class:`I2VError` as one ``error: <message>``
line (no traceback) and exits with status 2; any other exception keeps its traceback. Subclass
:class:`I2VError` (together with the matching built-in class, so that ``except FileNotFoundError`` and the
like keep working) for a new kind of user-facing error.
"""
from __future__ import annotations


class I2VError(Exception):
    """Base of the errors that name what the user has to fix; printed without a traceback."""


class ArgumentError(I2VError, ValueError):
    """A command-line argument value (or a combination of them) that cannot be used."""


class MissingFileError(I2VError, FileNotFoundError):
    """A file or folder that must exist (weights, a dataset root, a config) does not."""
