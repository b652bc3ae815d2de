"""What every command shares: the start of an entry point (logging, allocator tuning, the error path) and the
argument types of its parser.

Every script ends with ``utils.command.run(main)`` (directly or through :mod:`cli`):

- the project's own errors (:class:`utils.errors.I2VError`: config, missing files, bad data, bad argument
  values) print one ``error: <message>`` and exit with status 2, without a traceback; any other exception
  keeps its traceback;
- argument values are checked by the parser (argparse prints ``error: argument -bs: ...``, status 2).

No torch here: arguments are checked, and ``--help`` answers, before any heavy import.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from utils.allocator import tune_cpu_allocator
from utils.errors import I2VError
from utils.logsetup import setup_logging

# ----------------------------------------------------------------------------- the start of an entry point

def error_message(exc: BaseException) -> str:
    """The message of a project error; an error re-raised from a DataLoader worker loses the worker's traceback."""
    text = str(exc).strip()
    if "Original Traceback" in text:  # torch.utils.data re-raises worker errors with the traceback as text
        text = text.splitlines()[-1].split(": ", 1)[-1]
    return text


def run(main: Callable[[list[str]], Any], argv: Sequence[str] | None = None) -> None:
    """Start an entry point: logging (rank 0), the CPU allocator tuning of :mod:`utils.allocator` (off with
    ``I2V_MALLOC_TUNING=0``), then ``main(argv)`` with the project's error path (see the module docstring)."""
    setup_logging(rank=int(os.environ.get("RANK", 0)))
    tune_cpu_allocator()
    try:
        main(list(sys.argv[1:] if argv is None else argv))
    except I2VError as exc:
        for handler in logging.getLogger().handlers:  # earlier log lines first
            handler.flush()
        print(f"error: {error_message(exc)}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


# ----------------------------------------------------------------------------- argument types

def arg_type(name: str, check: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type from ``check``, whose ``ValueError`` message argparse prints after the flag's name."""

    def parse(text: str) -> Any:
        try:
            return check(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = name
    return parse


def int_at_least(low: int, what: str | None = None) -> Callable[[str], int]:
    """Integers ``>= low``."""
    what = what or {0: "a non-negative integer", 1: "a positive integer"}.get(low, f"an integer >= {low}")

    def check(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            raise ValueError(f"expected {what}, got {text!r}")
        return value

    return arg_type(f"int>={low}", check)


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not value > 0:
        raise ValueError(f"expected a positive number, got {text!r}")
    return value


positive_float = arg_type("positive_float", _positive_float)


def str2bool(v: str | bool) -> bool:
    """Parse 'True'/'False'/'1'/'0'/'yes'/'no' (the original treated any value as True)."""
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("true", "1", "yes", "y", "on"):
        return True
    if s in ("false", "0", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (True/False), got {v!r}")


def _existing(kind: str) -> Callable[[str], Path]:
    """An argparse type for an existing ``kind`` ('file' or 'folder'); the other kind is named as such."""
    right, other = (Path.is_file, "folder") if kind == "file" else (Path.is_dir, "file")

    def check(text: str) -> Path:
        path = Path(text).expanduser()
        if not path.exists():
            raise ValueError(f"{kind} not found: {path.resolve()}")
        if not right(path):
            raise ValueError(f"{path.resolve()} is a {other}; expected a {kind}")
        return path

    return arg_type(f"existing_{kind}", check)


existing_file, existing_folder = _existing("file"), _existing("folder")


def _gpu_spec(text: str) -> list[int]:
    """'0' -> [0]; '0,1' -> [0, 1]; '-1' -> [-1] (the CPU)."""
    try:
        ids = [int(g) for g in text.replace(" ", "").split(",") if g != ""]
    except ValueError:
        ids = []
    if not ids or (len(ids) > 1 and min(ids) < 0):
        raise ValueError(f"expected a GPU id, comma-separated ids (0,1) or -1 for the CPU, got {text!r}")
    return ids


gpu_spec = arg_type("gpu", _gpu_spec)


def add_gpu_argument(p: argparse.ArgumentParser) -> None:
    """The original's ``-gpu`` flag (optional here: absent means the first GPU if any, else the CPU)."""
    p.add_argument(
        "-gpu", "--gpu", type=gpu_spec, default=None, metavar="ID[,ID...]",
        help="GPU id or comma-separated ids; -1 for the CPU; default: first GPU if any, else CPU. Without "
             "CUDA (or with fewer GPUs) the CPU is used, with a warning",
    )


def parser(description: str | None, prog: str | None = None) -> argparse.ArgumentParser:
    """An argument parser that shows ``description`` (a module docstring) as written."""
    return argparse.ArgumentParser(prog=prog, description=description,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
