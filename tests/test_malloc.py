"""Freed big buffers leave the process (see dodo_transform/malloc.py)."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

# Rounds of twenty 4 MB buffers freed together, with small blocks made between them that live
# on (as a round's outcomes, and the worker's own lines and rows): the MB the process holds
# once every round is freed, above what it held before.
RETAINED = textwrap.dedent(
    """
    import sys
    from dodo_transform import malloc

    def rss_mb():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS"):
                return int(line.split()[1]) // 1024

    if sys.argv[1] == "fixed":
        assert malloc.return_big_buffers()
    before = rss_mb()
    kept = []
    first = b"x" * (4 * 1024 * 1024)
    del first  # the first big block freed: glibc's threshold rises to its size
    for round_ in range(10):
        big = []
        for i in range(20):
            big.append(b"y" * (4 * 1024 * 1024 + i))
            kept.append(("s" * 2000 + str(round_ * 100 + i)).encode())
        del big
    print(rss_mb() - before)
    """
)


def retained_mb(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", RETAINED, mode], capture_output=True, text=True, check=True
    )
    return int(done.stdout)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="a glibc setting")
def test_big_buffers_freed_go_back_to_the_system() -> None:
    fixed, unfixed = retained_mb("fixed"), retained_mb("as glibc starts")
    assert fixed < 16
    assert unfixed > fixed + 40  # what the worker kept before, a round's payloads' worth
