"""Big buffers go back to the system when freed: a handler's 4 MB payload, its JSON and its
pickle, in the worker and the sandbox processes.

glibc's malloc serves an allocation above its mmap threshold with a mapping of its own, unmapped
when freed, and a smaller one from its heap, which it gives back only from the top. The
threshold starts at 128 KB but rises to the size of every big block freed (up to 32 MB), so
after the first 4 MB payload the later ones come from the heap, and the small blocks allocated
between them keep it from shrinking: the process keeps the peak of the biggest round for good.
A fixed threshold does not rise. Measured with bench_pipeline.py's 100 payloads made into 4 MB
requests, the worker with its sandbox processes peaked at 458 MB without, 233 MB with.
Other C libraries (musl, macOS) have no such setting, and this does nothing there.
"""

from __future__ import annotations

import ctypes

# mallopt's parameter (malloc.h), and the size above which a block is a mapping of its own.
_M_MMAP_THRESHOLD = -3
BIG_BUFFER_BYTES = 1024 * 1024


def return_big_buffers() -> bool:
    """Serve blocks of `BIG_BUFFER_BYTES` and more by mappings, freed to the system at once;
    whether the C library took the setting."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, BIG_BUFFER_BYTES))
