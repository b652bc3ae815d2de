"""The project's own error classes: what a user gave (a config, a file, data, an argument value) is unusable.

Every entry point runs through :func:`utils.command.run`, which prints an :class:`I2VError` as one ``error: <message>``
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


# ------------------------------------------------------------------ checkpoints, training, run folders (#18)
class CheckpointError(I2VError, RuntimeError):
    """A checkpoint or weights file cannot be used: unreadable, not a checkpoint, or of mixed epochs."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint holds pickled Python objects beyond tensors and plain containers (loading could run code)."""


class CheckpointMismatchError(CheckpointError):
    """A checkpoint belongs to another model or to another configuration size than the one it is loaded into."""


class NonFiniteWeightsError(CheckpointError):
    """A checkpoint (being loaded or about to be written) holds NaN or Inf values."""


class CheckpointWriteError(I2VError, OSError):
    """A checkpoint could not be written (typically a full disk); the previous file is kept."""


class NonFiniteLossError(I2VError, FloatingPointError, RuntimeError):
    """Training produced NaN/Inf losses or validation metrics; no checkpoint was written from them."""


class RunFolderError(I2VError, RuntimeError):
    """A run folder is in use by another run, or holds another run's checkpoints."""


# ------------------------------------------------------------------------------------- outputs, checksums (#24)
class OutputPathError(I2VError, OSError):
    """An output place (``-out``, ``Training.save_path``, a result file) is a file where a folder is expected,
    or cannot be written."""


class ChecksumMismatchError(CheckpointError):
    """A checkpoint's bytes differ from the checksum recorded when it was written (corrupted or replaced)."""
