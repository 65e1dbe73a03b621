"""Console runs (test runs and impact previews): a few at once, on threads of their own.

A run waits on the console's sandbox process, for seconds at a time when a handler loops. On
asyncio's default executor a dozen previews once held every thread, and `/readyz`, the admin API
and the console's own pages queued behind them for 10-20 s. Here runs get `MAX_RUNS` threads of
their own, and one more is answered 429 at once rather than queued. Each run keeps the service's
limits: every handler call in it is stopped at DODO_TRANSFORM_HANDLER_TIME_LIMIT, in a sandbox
process (`trials.spec_for`), and a preview stops at its budget (`impact.BUDGET_SECONDS`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from fastapi import HTTPException, Request

T = TypeVar("T")
MAX_RUNS = 2
RETRY_SECONDS = 5


class Runs:
    """The console's runs in one app: at most `limit` at once."""

    def __init__(self, limit: int = MAX_RUNS) -> None:
        self.limit = limit
        self.running = 0  # touched on the event loop only
        self._threads = ThreadPoolExecutor(limit, thread_name_prefix="console-run")

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)` on a run thread; 429 while `limit` runs are going."""
        if self.running >= self.limit:
            raise HTTPException(
                429,
                f"busy, try again: {self.limit} test runs or previews are going already",
                headers={"Retry-After": str(RETRY_SECONDS)},
            )
        self.running += 1
        done = asyncio.get_running_loop().run_in_executor(self._threads, partial(function, *args))
        done.add_done_callback(self._finished)
        # Shielded: a request that goes away leaves its run counted until its thread is free.
        return await asyncio.shield(done)

    def _finished(self, _: object) -> None:
        self.running -= 1


def runs_of(request: Request) -> Runs:
    """The app's `Runs` (see `mount.install`)."""
    runs: Runs = request.app.state.console_runs
    return runs
