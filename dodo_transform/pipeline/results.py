"""Storing delivery results as they come: what the lanes hand in within a few milliseconds
goes in one transaction.

Each group a lane sends is stored as soon as it is done, whatever the other lanes do; a
short linger lets groups finishing together share a commit. While the store is unavailable
the writer keeps trying (the deliveries stay claimed meanwhile, so their lanes take no more
work). Any other failure fails the groups waiting on it, never leaves them waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from dodo_transform.errors import StorageError
from dodo_transform.metrics import PipelineMetrics
from dodo_transform.store import DeliveryUpdate

log = logging.getLogger("dodo_transform.pipeline")
LINGER_SECONDS = 0.005
STORE_RETRY_SECONDS = 1.0

StoreCall = Callable[..., Awaitable[Any]]
Record = Callable[[Sequence[DeliveryUpdate]], list[DeliveryUpdate]]


class ResultWriter:
    def __init__(self, store_call: StoreCall, record: Record, metrics: PipelineMetrics) -> None:
        self._store = store_call
        self._record = record
        self._metrics = metrics
        self._queued: list[tuple[list[DeliveryUpdate], asyncio.Future[list[DeliveryUpdate]]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def write(self, updates: list[DeliveryUpdate]) -> list[DeliveryUpdate]:
        """Store `updates`; those dropped as made under a claim that ran out."""
        if not updates:
            return []
        done: asyncio.Future[list[DeliveryUpdate]] = asyncio.get_running_loop().create_future()
        self._queued.append((updates, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="record results")
        return await done

    async def _flush(self) -> None:
        await asyncio.sleep(LINGER_SECONDS)
        while self._queued:
            queued, self._queued = self._queued, []
            try:
                dropped = await self._stored([u for group, _ in queued for u in group])
            except Exception as error:
                for _, done in queued:
                    if not done.done():
                        done.set_exception(error)
                continue
            stale = {id(update) for update in dropped}  # updates are unhashable: by identity
            for group, done in queued:
                if not done.done():
                    done.set_result([u for u in group if id(u) in stale])

    async def _stored(self, updates: list[DeliveryUpdate]) -> list[DeliveryUpdate]:
        failing = False
        while True:
            try:
                with self._metrics.timed("record results"):
                    dropped: list[DeliveryUpdate] = await self._store(self._record, updates)
                return dropped
            except StorageError as error:
                if not failing:
                    log.error("could not store delivery results, retrying: %s", error)
                failing = True
                await asyncio.sleep(STORE_RETRY_SECONDS)

    async def close(self) -> None:
        """Store what is queued (unless the store stays away), then stop."""
        if self._flusher is not None and not self._flusher.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._flusher), STORE_RETRY_SECONDS * 3)
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
        for _, done in self._queued:
            if not done.done():
                done.set_exception(StorageError("stopping before the results were stored"))
        self._queued.clear()
