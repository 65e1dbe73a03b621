"""Impact preview: what an edit would do to real traffic, before it is saved.

The edited source and the version in service both run on the newest stored
events, in the console's sandbox process, and each pair of outcomes is compared:
the same, changed (with a diff of what would be sent), or newly failing. Runs go
in small chunks, and the preview stops early when the edit keeps hitting its
limits or takes too long, so a handler that loops costs seconds, not minutes.
Blocking: call it in a thread.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from dodo_transform.store import StoredEvent
from dodo_transform.transforms.engine import Outcome, OutcomeKind
from dodo_transform.transforms.event import Event
from dodo_transform.transforms.sandbox_processes import Run
from dodo_transform.web.console import trials
from dodo_transform.web.context import WebContext

EVENTS = 200
CHUNK = 10
SHOWN = 20
BUDGET_SECONDS = 20.0
LIMIT_HITS = 3


@dataclass(frozen=True)
class Change:
    event: StoredEvent
    before: str  # the outcome word
    after: str
    diff: list[trials.DiffLine]
    error: str | None


@dataclass
class Impact:
    compared: int = 0
    same: int = 0
    changed: list[Change] = field(default_factory=list)
    failing: int = 0  # changed, and the edit ends in an error where the version in service did not
    stopped: str | None = None  # why the preview ended before the last event
    baseline: str | None = None  # the version compared against (None: nothing in service)

    @property
    def shown(self) -> list[Change]:
        return self.changed[:SHOWN]


def preview(context: WebContext, name: str, source: str) -> Impact:
    assert context.run_trials is not None
    current = context.registry.current().get(name)
    impact = Impact(baseline=current.version if current else None)
    started, hits = time.monotonic(), 0
    events = [e for e in context.store.list_events(EVENTS) if _usable(e)]
    for at in range(0, len(events), CHUNK):
        chunk = events[at : at + CHUNK]
        # Fresh specs for every chunk: each batch carries the sources it runs.
        edited = trials.spec_for(context.registry, name, source)
        runs = [Run(edited, _event(e)) for e in chunk]
        if current is not None:
            baseline = trials.spec_for(context.registry, name, current.source)
            runs += [Run(baseline, _event(e)) for e in chunk]
        outcomes = context.run_trials(runs)
        for index, event in enumerate(chunk):
            before = outcomes[len(chunk) + index] if current is not None else None
            _compare(impact, event, before, outcomes[index])
            hits += outcomes[index].hit_limit
        if at + CHUNK >= len(events):
            break
        if hits >= LIMIT_HITS:
            impact.stopped = f"the edited code hit its resource limits on {hits} events"
            break
        if time.monotonic() - started > BUDGET_SECONDS:
            impact.stopped = f"the preview took over {BUDGET_SECONDS:g} s"
            break
    return impact


def _usable(event: StoredEvent) -> bool:
    try:
        event.body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _event(stored: StoredEvent) -> Event:
    return Event(stored.event_type, stored.body.decode("utf-8"), stored.webhook_id)


def _compare(impact: Impact, event: StoredEvent, before: Outcome | None, after: Outcome) -> None:
    impact.compared += 1
    if before is not None and _sent(before) == _sent(after):
        impact.same += 1
        return
    failing = after.kind is OutcomeKind.ERROR and (
        before is None or before.kind is not OutcomeKind.ERROR
    )
    impact.failing += failing
    old = trials.pretty(_sent(before)) if before is not None else ""
    impact.changed.append(
        Change(
            event,
            before.kind.value if before is not None else "none",
            after.kind.value,
            trials.diff(old, trials.pretty(_sent(after))),
            after.error,
        )
    )


def _sent(outcome: Outcome) -> Any:
    """What matters of an outcome: its kind, what it would send, or its error."""
    return {
        "outcome": outcome.kind.value,
        "requests": [request.redacted() for request in outcome.requests],
        "error": outcome.error,
    }
