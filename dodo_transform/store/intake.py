"""Getting received events onto disk fast: group commit from one writer thread.

Every webhook must be committed before it is answered, and a commit costs an
fsync. Requests hand their event to `Intake.add` and await it. One writer thread
commits: while it commits a group, the events that arrive wait in a list, and
when the commit returns it takes the whole list as the next group, one
transaction (`Store.add_events`), and wakes that group's requests with one call
into their event loop. So under load a request costs an append to a list, the
writer is woken only when it was idle, and the event loop is woken once per
group; alone, an event is committed at once. In a burst (a group of `BURST_GROUP`
events or more), until no event waits, the writer holds `Store.priority()`, so the
worker's writes wait for ingest instead of ingest for them; at a steady rate nothing
waits for long, and the worker is not held up by every lone commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sys
import threading

from dodo_transform.errors import StorageError
from dodo_transform.store.base import IntakeStore
from dodo_transform.store.records import NewEvent

MAX_GROUP = 256
# A group this big means events arrive faster than single commits take them: a burst.
BURST_GROUP = 8
# The writer retakes the interpreter lock after each commit (SQLite lets it go for the
# fsync) while the event loop holds it, and Python makes a thread wait up to the switch
# interval (5 ms by default) for that: at most 1 ms in a process with an intake.
SWITCH_INTERVAL = 0.001

log = logging.getLogger("dodo_transform.intake")

Result = tuple[int, bool]


class _Waiting:
    __slots__ = ("event", "future", "loop")

    def __init__(
        self, event: NewEvent, future: asyncio.Future[Result], loop: asyncio.AbstractEventLoop
    ) -> None:
        self.event = event
        self.future = future
        self.loop = loop


class Intake:
    def __init__(self, store: IntakeStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._pending: list[_Waiting] = []
        self._idle = True  # the writer waits for `_wake`; guarded by `_lock`
        self._closed = False
        self._wake: queue.SimpleQueue[None] = queue.SimpleQueue()
        if sys.getswitchinterval() > SWITCH_INTERVAL:
            sys.setswitchinterval(SWITCH_INTERVAL)
        self._thread = threading.Thread(target=self._write_forever, name="intake", daemon=True)
        self._thread.start()

    async def add(self, event: NewEvent) -> Result:
        """Store `event`; (event id, whether it is new). Raises `StorageError`."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        with self._lock:
            if self._closed:
                raise StorageError("the intake is closed: the server is stopping")
            self._pending.append(_Waiting(event, future, loop))
            wake, self._idle = self._idle, False
        if wake:
            self._wake.put(None)
        return await future

    def close(self) -> None:
        """Commit what is waiting, then stop the writer; later events are refused."""
        with self._lock:
            self._closed = True
            self._idle = False
        self._wake.put(None)
        self._thread.join(timeout=10)

    def _write_forever(self) -> None:
        while True:
            self._wake.get()
            # From a burst's first group until no event waits, the worker lets ingest go first.
            with contextlib.ExitStack() as burst:
                first_in_line = False
                while group := self._next_group():
                    if not first_in_line and len(group) >= BURST_GROUP:
                        burst.enter_context(self._store.priority())
                        first_in_line = True
                    self._commit(group)
            if self._closed:
                return

    def _next_group(self) -> list[_Waiting]:
        """Up to MAX_GROUP waiting events; none means the writer is idle from now on."""
        with self._lock:
            group = self._pending[:MAX_GROUP]
            del self._pending[:MAX_GROUP]
            if not group and not self._closed:
                self._idle = True
            return group

    def _commit(self, group: list[_Waiting]) -> None:
        results: list[Result] | StorageError
        try:
            results = self._store.add_events([waiting.event for waiting in group])
        except StorageError as error:
            results = error
        except Exception as error:  # a bug must fail this group, not stop every later one
            log.exception("the intake could not store a group of events")
            results = StorageError(f"store write failed: {error!r}")
        by_loop: dict[asyncio.AbstractEventLoop, list[int]] = {}
        for index, waiting in enumerate(group):
            by_loop.setdefault(waiting.loop, []).append(index)
        for loop, indexes in by_loop.items():
            # A closed event loop refuses the call: nobody waits for those answers any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(
                    _settle,
                    [group[i].future for i in indexes],
                    results if isinstance(results, StorageError) else [results[i] for i in indexes],
                )


def _settle(futures: list[asyncio.Future[Result]], results: list[Result] | StorageError) -> None:
    for index, future in enumerate(futures):
        if future.done():
            continue  # the request went away
        if isinstance(results, StorageError):
            future.set_exception(StorageError(str(results)))
        else:
            future.set_result(results[index])
