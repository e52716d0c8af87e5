"""Keep glibc from returning freed memory to the kernel on every transfer (measured, §8.4).

libtorrent allocates and frees its 16 KiB disk and send buffers by the thousand per second.
With glibc's defaults (trim the heap once 128 KiB at its top are free; serve requests above
a threshold that starts at 128 KiB from fresh mmaps), the heap shrinks and grows all the
time, and every regrowth costs page faults and zeroed pages. Measured with perf on a seeder
and a downloader on one 2-core machine (bench/transfer.py): about 16 % of the seeder's CPU
was page faults and `clear_page`; raising both thresholds cut the seeder from 1.7 to 1.0
CPU-seconds per GiB sent and the downloader from 3.6 to 3.0 per GiB received. The cost is
memory: a process keeps up to `TRIM_THRESHOLD` of freed heap for reuse.

Process-wide and done once, before the first session; skipped when the user set
`GLIBC_TUNABLES` (their choice wins) and on a C library other than glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import platform
import threading

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's <malloc.h>
_M_MMAP_THRESHOLD = -3
TRIM_THRESHOLD = 256 * 1024 * 1024  # bytes of free heap kept before giving memory back
MMAP_THRESHOLD = 32 * 1024 * 1024  # allocations above this still get their own mmap

_done = threading.Event()
_lock = threading.Lock()


def tune_allocator() -> bool:
    """Raise glibc's trim and mmap thresholds once per process; True if this call did."""
    with _lock:
        if _done.is_set():
            return False
        _done.set()
        if "GLIBC_TUNABLES" in os.environ or platform.libc_ver()[0] != "glibc":
            return False
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            ok = libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
            ok = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and ok
        except (OSError, AttributeError) as exc:
            log.debug("mallopt unavailable: %s", exc)
            return False
        return bool(ok)
