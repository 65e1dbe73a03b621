"""Backfills: run a transform over the stored events it has no delivery for.

A transform added today (an identify handler, say) sees only the events that
arrive from now on; a backfill runs it over last month's events too. The web
edge and the CLI count and ask (`scope`, `Store.start_backfill`); the worker
runs it here, a step at a time:

- in id order from a stored cursor, so a restarted worker goes on where the
  last one stopped, and several workers never store an event's outcome twice
  (a step's outcomes and the cursor move in one transaction, which fails if
  another worker moved the cursor first);
- paced to the destination's rate limit, one event per request it allows, so
  live events are never queued behind a month of old ones;
- with each Segment message dated when its event happened (`timestamp`), not
  when it was sent, unless the handler dated it itself.

Only events the transform stage has finished are taken: a pending one gets its
delivery from the transform stage, as every new event does.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from dodo_transform.errors import DodoTransformError
from dodo_transform.outgoing import segment
from dodo_transform.pipeline.outcomes import outcome_deliveries
from dodo_transform.pipeline.transform_stage import EVENTS_PER_ROUND, RunAll
from dodo_transform.store import Backfill, NewDelivery, Requests, StoredEvent
from dodo_transform.transforms.engine import Outcome, Transform
from dodo_transform.transforms.event import Event
from dodo_transform.transforms.registry import Registry

log = logging.getLogger("dodo_transform.pipeline")
# Events per step at most, as many as the transform stage runs in a round (what handlers return
# is held for one step's events); a step is followed by a pause of (events / rate) seconds.
STEP_EVENTS = EVENTS_PER_ROUND


class BackfillError(DodoTransformError):
    """A backfill cannot start: its transform is broken or disabled."""


class UnknownTransform(BackfillError):
    """No transform has this name."""


def check_backfillable(registry: Registry, transform: str) -> None:
    """`BackfillError` unless `transform` is loaded and enabled."""
    if transform not in registry.current():
        error = registry.errors.get(transform)
        if error:
            raise BackfillError(f"transform {transform} does not load: {error}")
        known = ", ".join(sorted(registry.current())) or "none"
        raise UnknownTransform(f"no transform {transform} (loaded: {known})")
    if not registry.settings(transform).enabled:
        raise BackfillError(
            f"transform {transform} is disabled (enabled = false in transforms.toml)"
        )


def count(
    store: Requests,
    registry: Registry,
    transform: str,
    event_types: Sequence[str] | None,
    since: float | None,
    after: int = 0,
    up_to: int | None = None,
) -> dict[str, int]:
    """Events a backfill of `transform` would run on, by type: those it has no delivery for,
    of `event_types` (None: all) that its `events` in transforms.toml let it receive."""
    settings = registry.settings(transform)
    counts = store.count_backfill(
        transform, event_types=event_types, since=since, after=after, up_to=up_to
    )
    return {kind: n for kind, n in sorted(counts.items()) if settings.receives(kind)}


def run_step(store: Requests, registry: Registry, backfill: Backfill, run_all: RunAll) -> int:
    """Run the next step of `backfill` (blocking); how many events it took, 0 once done."""
    transform = registry.current().get(backfill.transform)
    if transform is None or not registry.settings(backfill.transform).enabled:
        reason = "is no longer loaded" if transform is None else "was disabled"
        store.finish_backfill(
            backfill.id,
            f"transform {backfill.transform} {reason}; start the backfill again to go on",
        )
        log.warning("backfill stopped", extra={"backfill": backfill.id, "reason": reason})
        return 0
    settings = registry.settings(transform.name)
    events = store.backfill_events(
        transform.name,
        event_types=backfill.event_types,
        since=backfill.since,
        after=backfill.cursor,
        up_to=backfill.last_event_id,
        limit=STEP_EVENTS,
    )
    if not events:
        store.finish_backfill(backfill.id, None)
        log.info(
            "backfill finished",
            extra={"backfill": backfill.id, "transform": transform.name, "events": backfill.ran},
        )
        return 0
    # `events` in transforms.toml may hold patterns (payment.*): filtered here, not in SQL.
    taken = [stored for stored in events if settings.receives(stored.event_type)]
    outcomes = run_all([(transform, _event(stored)) for stored in taken])
    results = {
        stored.id: dated(transform, outcome, stored)
        for stored, outcome in zip(taken, outcomes, strict=True)
    }
    if store.advance_backfill(backfill.id, backfill.cursor, events[-1].id, results):
        log.info(
            "backfill step",
            extra={"backfill": backfill.id, "transform": transform.name, "events": len(taken)},
        )
    return len(events)


def dated(transform: Transform, outcome: Outcome, stored: StoredEvent) -> list[NewDelivery]:
    """The deliveries of a backfilled event, each Segment message dated when it happened."""
    when = event_time(stored)
    requests = tuple(
        replace(request, payload=segment.dated(request.url, request.payload, when))
        for request in outcome.requests
    )
    return outcome_deliveries(transform, replace(outcome, requests=requests))


def event_time(stored: StoredEvent) -> str:
    """When the event happened: its body's `timestamp` (Dodo's ISO 8601), else when it came."""
    try:
        stamp = json.loads(stored.body).get("timestamp")
    except (ValueError, AttributeError, RecursionError):
        stamp = None
    if isinstance(stamp, str) and stamp:
        return stamp
    return datetime.fromtimestamp(stored.received_at, UTC).isoformat().replace("+00:00", "Z")


def _event(stored: StoredEvent) -> Event:
    # Ingest stores only UTF-8 bodies; one written otherwise still gets an outcome.
    body = stored.body.decode("utf-8", "replace")
    return Event(stored.event_type, body, stored.webhook_id, stored.mode)
