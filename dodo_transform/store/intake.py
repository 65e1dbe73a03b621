"""Getting received events onto disk fast: group commit from one writer thread.

Every webhook must be committed before it is answered, and a commit costs an
fsync. Requests hand their event to `Intake.add` and await it; one writer
thread takes everything queued, stores it in a single transaction, and wakes
all the waiting requests at once. Under load many events share one commit;
alone, an event is committed at once.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from dataclasses import dataclass

from dodo_transform.errors import StorageError
from dodo_transform.store.base import Store
from dodo_transform.store.records import NewEvent

MAX_GROUP = 256


@dataclass
class _Waiting:
    event: NewEvent
    future: asyncio.Future[tuple[int, bool]]
    loop: asyncio.AbstractEventLoop


class Intake:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._queue: queue.SimpleQueue[_Waiting | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._write_forever, name="intake", daemon=True)
        self._thread.start()

    async def add(self, event: NewEvent) -> tuple[int, bool]:
        """Store `event`; (event id, whether it is new). Raises `StorageError`."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[int, bool]] = loop.create_future()
        self._queue.put(_Waiting(event, future, loop))
        return await future

    def close(self) -> None:
        """Commit what is queued, then stop the writer."""
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _write_forever(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            while len(group) < MAX_GROUP:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # stop after this group
                    break
                group.append(more)
            self._commit(group)

    def _commit(self, group: list[_Waiting]) -> None:
        try:
            results: list[tuple[int, bool]] | StorageError = self._store.add_events(
                [waiting.event for waiting in group]
            )
        except StorageError as error:
            results = error
        by_loop: dict[asyncio.AbstractEventLoop, list[int]] = {}
        for index, waiting in enumerate(group):
            by_loop.setdefault(waiting.loop, []).append(index)
        for loop, indexes in by_loop.items():
            loop.call_soon_threadsafe(
                _settle,
                [group[i].future for i in indexes],
                results if isinstance(results, StorageError) else [results[i] for i in indexes],
            )


def _settle(
    futures: list[asyncio.Future[tuple[int, bool]]],
    results: list[tuple[int, bool]] | StorageError,
) -> None:
    for index, future in enumerate(futures):
        if future.done():
            continue  # the request went away
        if isinstance(results, StorageError):
            future.set_exception(StorageError(str(results)))
        else:
            future.set_result(results[index])
