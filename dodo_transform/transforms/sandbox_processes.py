"""Handlers run in sandbox processes, so that no built-in call can outlast its time limit.

QuickJS checks its interrupt only between bytecodes: one long C built-in call
(`Array.prototype.join.call({length: 2**32}, "")`) runs on past any limit, and
no thread can stop it. A process can be stopped. The pipeline hands its runs
to a `SandboxPool`: a few long-lived child processes, each holding compiled
transforms, that run a batch of (transform, event) pairs and send back the
outcomes in one message.

The backstop is cheap because nothing crosses the pipe per run: before each
run the child writes the run's index and its own CPU time into shared memory.
The parent polls that while it waits; a run whose process has used more than
`limit * BACKSTOP_FACTOR + BACKSTOP_MARGIN_SECONDS` of CPU since the run began
is stuck in C, so the child is killed and replaced, that run ends as a
time-limit error (counted toward quarantine), and the rest of the batch runs
again in the new child (runs are pure: running one twice is harmless).

A child also works out the search terms of each event it was sent (`Event.terms`) and sends
them back with the outcomes: in a burst the worker, which stores them, is the busiest process,
and the children have CPU to spare.

A child also exits with its parent (a thread watches for it), so a stuck one
never lives on as an orphan.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from dodo_transform import malloc
from dodo_transform.errors import HandlerError
from dodo_transform.limits import Limits
from dodo_transform.outgoing import OutgoingRequest
from dodo_transform.transforms.engine import Outcome, OutcomeKind, Transform
from dodo_transform.transforms.event import Event
from dodo_transform.transforms.quarantine import QUARANTINED, Quarantine, Version

log = logging.getLogger("dodo_transform.sandbox")
# The interrupt stops ordinary code at the limit; the backstop waits a little longer so it
# only ever catches what the interrupt cannot.
BACKSTOP_FACTOR = 1.5
BACKSTOP_MARGIN_SECONDS = 0.5
POLL_SECONDS = 0.02
MAX_COMPILED = 64  # versions a child keeps before it starts afresh
# What a child hands back at once, about: a batch whose outcomes would hold more (handlers
# returning megabytes) comes back in parts, so the worker never holds a batch's worth of them.
BATCH_OUTCOME_BYTES = 16 * 1024 * 1024
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
WATCH_PARENT_SECONDS = 0.2
_IDLE = -1.0


class PoolClosed(Exception):
    """The pool was closed while runs waited: they have no outcome (the work is redone)."""


# What identifies a compiled transform in a child (see `TransformSpec.key`).
SpecKey = tuple[Any, ...]


@dataclass(frozen=True)
class TransformSpec:
    """What a child needs to compile a transform: everything but its runtimes."""

    name: str
    version: str
    source: str
    filename: str
    default_url: str
    env: dict[str, str]
    limits: Limits
    max_requests: int = 100
    settings_digest: str = ""

    @classmethod
    def of(cls, transform: Transform) -> TransformSpec:
        return cls(
            transform.name,
            transform.version,
            transform.source,
            transform.filename,
            transform.default_url,
            dict(transform.env),
            transform.limits,
            transform.max_requests,
            transform.settings_digest,
        )

    # Worked out once: asked for every run of a batch, several times.
    @cached_property
    def version_key(self) -> Version:
        """What the quarantine counts by."""
        return (self.name, self.version)

    @cached_property
    def key(self) -> SpecKey:
        """What a child compiles once: the version, and what the handler is given from the
        settings (a secret's new value changes no shown version, but must reach the handler)."""
        env = tuple(sorted(self.env.items()))
        return (self.name, self.version, self.default_url, env, self.max_requests)


@dataclass(frozen=True)
class Run:
    spec: TransformSpec
    event: Event


# --- the child ---------------------------------------------------------------------------------


def _child_main(conn: Connection, progress: Any) -> None:
    """A sandbox process: compile on demand, run batches, report progress in shared memory."""
    _exit_with_parent(os.getppid())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    malloc.return_big_buffers()  # a handler's megabytes go back once its batch is sent
    compiled: dict[SpecKey, Transform | HandlerError] = {}
    specs: dict[SpecKey, TransformSpec] = {}
    while True:
        try:
            forget, new_specs, events, runs, strikes = conn.recv()
        except (EOFError, OSError):
            return
        if forget:  # the parent starts afresh (many versions seen): so do we
            compiled.clear()
            specs.clear()
        specs.update((spec.key, spec) for spec in new_specs)
        batch = [Event(*e) for e in events]
        outcomes = _run_batch_here(compiled, specs, batch, runs, strikes, progress)
        # Worked out here, beside the handlers: this process has CPU to spare in a burst, the
        # worker that stores them with the outcomes has none (see search_terms.py).
        terms = [event.terms for event in batch]
        try:
            conn.send((outcomes, terms))
        except OSError:  # the parent is gone (killed): nobody to answer, nothing to report
            return


def _run_batch_here(
    compiled: dict[SpecKey, Transform | HandlerError],
    specs: dict[SpecKey, TransformSpec],
    events: list[Event],
    runs: list[tuple[SpecKey, int]],
    strikes: dict[Version, int],
    progress: Any,
) -> list[_Flat]:
    """Run a batch's runs in order, as far as `BATCH_OUTCOME_BYTES` of outcomes: the parent
    sends the rest again. Within one batch too, a version that keeps hitting its limit is not
    run again (each run would cost its whole limit), counted from the pipeline's strikes."""
    outcomes = []
    quarantine = Quarantine(strikes)
    held = 0
    for index, (key, event) in enumerate(runs):
        if held >= BATCH_OUTCOME_BYTES:
            break
        version = specs[key].version_key
        if quarantine.holds(version):
            outcomes.append(_flat(QUARANTINED))
            continue
        progress[1] = time.process_time()
        progress[0] = index
        outcome = _run_one(compiled, specs, key, events[event])
        quarantine.record(version, outcome.hit_limit)
        held += outcome.size
        outcomes.append(_flat(outcome))
    progress[0] = _IDLE
    return outcomes


def _run_one(
    compiled: dict[SpecKey, Transform | HandlerError],
    specs: dict[SpecKey, TransformSpec],
    key: SpecKey,
    event: Event,
) -> Outcome:
    transform = compiled.get(key)
    if transform is None:
        spec = specs[key]
        try:
            transform = Transform(
                name=spec.name,
                source=spec.source,
                filename=spec.filename,
                default_url=spec.default_url,
                env=spec.env,
                limits=spec.limits,
                max_requests=spec.max_requests,
                settings_digest=spec.settings_digest,
            )
        except HandlerError as error:
            transform = error
        compiled[key] = transform
    if isinstance(transform, HandlerError):
        return Outcome(OutcomeKind.ERROR, error=str(transform))
    return transform.run(event)


# Outcomes and events cross the pipe as plain tuples: pickling dataclasses costs several
# times more, and this is paid on every run.
_Flat = tuple[str, tuple[tuple[str, str, dict[str, str], Any], ...], Any, str | None, bool, int]


def _flat(outcome: Outcome) -> _Flat:
    requests = tuple((r.method, r.url, dict(r.headers), r.payload) for r in outcome.requests)
    return (
        outcome.kind.value,
        requests,
        outcome.logs,
        outcome.error,
        outcome.hit_limit,
        outcome.size,
    )


def _unflat(flat: _Flat) -> Outcome:
    kind, requests, logs, error, hit_limit, size = flat
    return Outcome(
        _KINDS[kind],  # a dict lookup: calling the enum costs more, for every run
        tuple([OutgoingRequest(*request) for request in requests]),
        logs,
        error,
        hit_limit,
        size,  # what the transform stage bounds its rounds by
    )


_KINDS = {kind.value: kind for kind in OutcomeKind}


def _exit_with_parent(parent_pid: int) -> None:
    """Exit when the parent process is gone, even while a handler is stuck in C.

    A thread, not a parent-death signal: Linux sends that when the parent *thread* that
    started the child exits, and the pool starts replacements from short-lived threads.
    The binding releases the GIL while QuickJS runs, so this thread runs meanwhile.
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(WATCH_PARENT_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


# --- the parent --------------------------------------------------------------------------------


@dataclass
class SandboxProcess:
    """The parent's handle on one child: send a batch, watch it, kill and replace it."""

    context: Any = field(default_factory=lambda: multiprocessing.get_context("spawn"))
    process: BaseProcess | None = None
    conn: Connection | None = None
    progress: Any = None
    known: set[SpecKey] = field(default_factory=set)  # versions the child was sent
    restarts: int = 0
    batches: int = 0  # batches sent to the child (one run's batch may go in parts)
    # Set by the pool's `close`, from another thread than the one running a batch: the child
    # is not replaced, and a batch running ends with `PoolClosed` rather than an outcome.
    closed: bool = False
    _killing: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        self.progress = self.context.Array("d", [_IDLE, 0.0], lock=False)
        parent_end, child_end = self.context.Pipe()
        self.process = self.context.Process(
            target=_child_main,
            args=(child_end, self.progress),
            name="dodo-transform-sandbox",
            daemon=True,
        )
        self.process.start()
        child_end.close()
        self.conn = parent_end
        self.known = set()

    def run(self, runs: Sequence[Run], quarantine: Quarantine | None = None) -> list[Outcome]:
        """Run a batch; a run stuck past the backstop ends as a time-limit error. Runs are
        counted from `quarantine`'s strikes so far (the pipeline's), on a copy."""
        outcomes: list[Outcome | None] = [None] * len(runs)
        versions = {run.spec.version_key for run in runs}
        batch_quarantine = Quarantine((quarantine or Quarantine()).seeded(versions))
        while True:
            todo = []
            for i, run in enumerate(runs):
                if outcomes[i] is None and batch_quarantine.holds(run.spec.version_key):
                    outcomes[i] = QUARANTINED  # as the child does after as many limit hits
                elif outcomes[i] is None:
                    todo.append(i)
            if not todo:
                return [outcome for outcome in outcomes if outcome is not None]
            batch = [runs[i] for i in todo]
            finished, stuck_at, reason = self._run_batch(batch, batch_quarantine)
            if finished is not None:  # all of the batch, or as much as its outcome bytes allow
                for i, outcome in zip(todo, finished, strict=False):
                    outcomes[i] = outcome
                    if outcome is not QUARANTINED:
                        batch_quarantine.record(runs[i].spec.version_key, outcome.hit_limit)
            elif stuck_at is not None:
                batch_quarantine.record(batch[stuck_at].spec.version_key, True)
                outcomes[todo[stuck_at]] = _stopped(batch[stuck_at].spec, reason)

    def _run_batch(
        self, batch: Sequence[Run], quarantine: Quarantine
    ) -> tuple[list[Outcome] | None, int | None, str]:
        """The batch's outcomes, or (None, index of the run that stopped the child, why)."""
        if self.closed:
            raise PoolClosed("the sandbox processes are stopping")
        if self.process is None or not self.process.is_alive():
            self.start()
        conn, process = self.conn, self.process  # `kill` from `close` may clear the fields
        assert conn is not None and process is not None
        # The child keeps every version it was sent; past MAX_COMPILED both sides forget them
        # all (a folder edited many times) and the batch sends what it needs again.
        forget = len(self.known) > MAX_COMPILED
        if forget:
            self.known.clear()
        specs = {run.spec.key: run.spec for run in batch if run.spec.key not in self.known}
        self.known.update(specs)
        self.progress[0] = _IDLE
        # Each event crosses once, however many transforms run on it.
        numbered: dict[int, int] = {}
        unique: list[Event] = []
        for run in batch:
            if id(run.event) not in numbered:
                numbered[id(run.event)] = len(unique)
                unique.append(run.event)
        events = [(e.event_type, e.body, e.webhook_id, e.mode) for e in unique]
        runs = [(run.spec.key, numbered[id(run.event)]) for run in batch]
        try:
            strikes = quarantine.seeded({run.spec.version_key for run in batch})
            conn.send((forget, list(specs.values()), events, runs, strikes))
            self.batches += 1
            while True:
                if conn.poll(POLL_SECONDS):
                    flat, terms = conn.recv()
                    for event, its_terms in zip(unique, terms, strict=True):
                        event.knows(its_terms)
                    return [_unflat(outcome) for outcome in flat], None, ""
                if not process.is_alive():
                    return self._replace(batch, "the sandbox process crashed")
                index = int(self.progress[0])
                if index >= 0 and self._cpu_seconds(process) - self.progress[1] > _backstop(
                    batch[index]
                ):
                    return self._replace(batch, "")
        except (EOFError, OSError):  # the child died, or `close` closed the pipe
            return self._replace(batch, "the sandbox process crashed")

    def _replace(self, batch: Sequence[Run], crashed: str) -> tuple[None, int, str]:
        if self.closed:
            raise PoolClosed("the sandbox processes are stopping")
        index = max(int(self.progress[0]), 0)
        self.kill()
        self.restarts += 1
        run = batch[index]
        log.error(
            "sandbox process stopped and replaced",
            extra={
                "transform": run.spec.name,
                "webhook_id": run.event.webhook_id,
                "reason": crashed or "time limit overrun in a built-in call",
            },
        )
        return None, index, crashed

    @staticmethod
    def _cpu_seconds(process: BaseProcess) -> float:
        """The child's CPU time so far, from the kernel's accounting."""
        try:
            with open(f"/proc/{process.pid}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS

    def kill(self) -> None:
        """Stop the child; safe to call from two threads at once (a batch's thread replacing
        it, and `close`)."""
        with self._killing:
            process, conn = self.process, self.conn
            self.process, self.conn = None, None
        if process is not None and process.is_alive():
            process.kill()
            process.join(5)
        if conn is not None:
            conn.close()


def _backstop(run: Run) -> float:
    return run.spec.limits.time_seconds * BACKSTOP_FACTOR + BACKSTOP_MARGIN_SECONDS


def _stopped(spec: TransformSpec, crashed: str) -> Outcome:
    if crashed:
        return Outcome(
            OutcomeKind.ERROR, error=f"{spec.filename}: {crashed} while running it", hit_limit=True
        )
    return Outcome(
        OutcomeKind.ERROR,
        error=(
            f"{spec.filename}: time limit of {spec.limits.time_seconds:g} s exceeded inside a "
            "built-in call (stopped by the supervisor); make the handler do less work"
        ),
        hit_limit=True,
    )


class SandboxPool:
    """`size` sandbox processes; `run` spreads a batch over them and waits for all.

    Thread-safe: each process serves one batch at a time, taken from a free list.
    """

    def __init__(self, size: int, quarantine: Quarantine | None = None) -> None:
        """`quarantine`: the pipeline's, which the runs of a batch are counted from (none:
        each batch counts from nothing, as for the console's trial runs)."""
        self.quarantine = quarantine
        self._free = [SandboxProcess() for _ in range(size)]
        self._all = list(self._free)
        self._lock = threading.Condition()
        self._closed = False
        # Threads that wait on the other processes while the caller's thread waits on one.
        self._threads = ThreadPoolExecutor(max(1, size - 1), "sandbox-wait")

    def run_pairs(self, pairs: Sequence[tuple[Transform, Event]]) -> list[Outcome]:
        """Each transform's outcome on its event, in order (blocking)."""
        specs: dict[tuple[str, str], TransformSpec] = {}
        runs = []
        for transform, event in pairs:
            key = (transform.name, transform.version)
            spec = specs.get(key) or specs.setdefault(key, TransformSpec.of(transform))
            runs.append(Run(spec, event))
        return self.run(runs)

    def run(self, runs: Sequence[Run]) -> list[Outcome]:
        """Every run's outcome, in order (blocking: call it off the event loop)."""
        if not runs:
            return []
        shares = min(len(self._all), len(runs))
        if shares == 1:
            return self._on_one(runs)
        slices = [list(range(i, len(runs), shares)) for i in range(shares)]
        results: list[list[Outcome]] = [[] for _ in slices]

        def work(n: int) -> None:
            results[n] = self._on_one([runs[i] for i in slices[n]])

        helpers = [self._threads.submit(work, n) for n in range(1, shares)]
        work(0)
        for helper in helpers:
            helper.result()
        outcomes: list[Outcome | None] = [None] * len(runs)
        for indexes, found in zip(slices, results, strict=True):
            for i, outcome in zip(indexes, found, strict=True):
                outcomes[i] = outcome
        return [outcome for outcome in outcomes if outcome is not None]

    def _on_one(self, runs: Sequence[Run]) -> list[Outcome]:
        if self._closed:
            raise PoolClosed("the sandbox processes are stopping")
        with self._lock:
            while not self._free:
                self._lock.wait()
            process = self._free.pop()
        try:
            outcomes = process.run(runs, self.quarantine)
            if self._closed:  # killed by `close`, not by a handler: these are not outcomes
                raise PoolClosed("the sandbox processes are stopping")
            return outcomes
        finally:
            with self._lock:
                self._free.append(process)
                self._lock.notify()

    @property
    def restarts(self) -> int:
        return sum(process.restarts for process in self._all)

    @property
    def batches(self) -> int:
        return sum(process.batches for process in self._all)

    def close(self) -> None:
        """Stop every child; runs waiting on one end with `PoolClosed`."""
        self._closed = True
        for process in self._all:
            process.closed = True
            process.kill()
        self._threads.shutdown(wait=False)
