"""glibc ``malloc`` tuning for the large CPU tensors of 3D video networks.

By default glibc serves every allocation above its mmap threshold (128 KiB, adapting up to 32 MiB) with a
fresh ``mmap`` and returns it to the kernel on ``free``. A BAIR decoder forward allocates hundreds of
activation tensors of 16-200 MiB, so every one of them is page-faulted in again, page by page, on each
forward and backward (670-830 thousand page faults per BAIR decoder forward of batch 2). On the project's
2-core VM the tuning makes sampling x1.1-1.2 and the training forward/backward x1.1-1.3 faster
(``benchmarks/README.md``). :func:`tune_cpu_allocator` makes glibc serve large blocks from its heap and keep
freed memory for reuse (``M_MMAP_MAX = 0``, ``M_TRIM_THRESHOLD`` = 2 GiB); the process's resident memory
then stays at its peak instead of shrinking between iterations.

Every entry point applies it at start-up (:func:`utils.command.run`; the benchmarks call
:func:`tune_cpu_allocator` themselves); ``I2V_MALLOC_TUNING=0`` in the environment switches it off. It
does nothing where the C library has no ``mallopt`` (macOS, musl, Windows).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

logger = logging.getLogger(__name__)

ENV_VAR = "I2V_MALLOC_TUNING"
M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
M_MMAP_MAX = -4
TUNED = {M_MMAP_MAX: 0, M_TRIM_THRESHOLD: 2**31 - 1}
GLIBC_DEFAULTS = {M_MMAP_MAX: 65536, M_TRIM_THRESHOLD: 128 * 1024}


def _mallopt():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    fn = getattr(libc, "mallopt", None)
    if fn is not None:
        fn.argtypes, fn.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return fn


def _apply(settings: dict[int, int]) -> bool:
    mallopt = _mallopt()
    if mallopt is None:
        return False
    return all(mallopt(param, value) == 1 for param, value in settings.items())


def tune_cpu_allocator(enabled: bool | None = None) -> bool:
    """Keep large freed CPU blocks in the process for reuse (see the module doc). ``enabled=None`` reads
    ``$I2V_MALLOC_TUNING`` (default on). Returns whether the tuning is active."""
    if enabled is None:
        enabled = os.environ.get(ENV_VAR, "1").strip().lower() not in ("0", "false", "no", "off")
    if not enabled:
        return False
    ok = _apply(TUNED)
    logger.debug("malloc tuning for large tensors: %s", "on" if ok else "unavailable (no glibc mallopt)")
    return ok


def restore_default_allocator() -> bool:
    """Back to glibc's default thresholds (fixed, no longer adaptive). Returns whether it was applied."""
    return _apply(GLIBC_DEFAULTS)
