"""Hot reload: watch the transforms folder and reload the registry when anything in it changes."""

from __future__ import annotations

import asyncio
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
    async for _ in watch(registry, stop):
        # The registry logs what changed, once: loaded, reloaded, removed or failed.
        await asyncio.to_thread(registry.reload)
