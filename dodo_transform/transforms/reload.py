"""Hot reload: watch the transforms folder and reload the registry when anything in it changes."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import AsyncIterator, Callable

import watchfiles

from dodo_transform.transforms.registry import Registry

log = logging.getLogger("dodo_transform.transforms.reload")
DEBOUNCE_MS = 100
Watcher = Callable[[Registry, asyncio.Event], AsyncIterator[object]]


def watch_folder(registry: Registry, stop: asyncio.Event) -> AsyncIterator[object]:
    """Yield once per batch of changes in the folder (watchfiles, short debounce)."""
    return watchfiles.awatch(registry.directory, debounce=DEBOUNCE_MS, step=20, stop_event=stop)


async def reload_on_change(
    registry: Registry, stop: asyncio.Event, watch: Watcher = watch_folder
) -> None:
    """Reload `registry` after every change until `stop` is set."""
    # Both processes of a service watch the folder; watchfiles' own "1 change detected" line
    # comes from the one whose registry says what changed, so that a save logs it once.
    _quiet.set(not registry.logs_changes)  # this task's context only
    async for _ in watch(registry, stop):
        # The registry logs what changed, once: loaded, reloaded, removed or failed.
        await asyncio.to_thread(registry.reload)


class _QuietWhereAsked(logging.Filter):
    """Drops watchfiles' info lines logged in a task that set `_quiet` (awatch logs from the
    watching task's own frame, so its context says which watcher logged); warnings stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not _quiet.get()


_quiet: contextvars.ContextVar[bool] = contextvars.ContextVar("quiet_watch", default=False)
logging.getLogger("watchfiles.main").addFilter(_QuietWhereAsked())
