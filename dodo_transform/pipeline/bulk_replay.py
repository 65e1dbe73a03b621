"""Bulk replays: every replayable delivery a filtered list holds, replayed by the worker.

After an incident (a destination down for an hour, a handler bug fixed) the deliveries to
replay are thousands. The web edge and the CLI count them first (`preview`), then record the
bulk replay (`Store.start_bulk_replay`: the deliveries the filters choose at that moment, up to
the newest delivery id then); the worker runs it here a step at a time:

- in delivery id order from a stored cursor, so a restarted worker goes on where the last one
  stopped; the cursor moves only from where it was, and a delivery is replayed once however
  many workers reach it (the replay itself checks that it may still be replayed);
- at a bounded pace (`bulk_replay_per_second`), so live events are never queued behind it;
- checking before each delivery whether it was cancelled, so a cancel stops it within one
  delivery and leaves the rest as they were.

Two modes (`ReplayMode`): run the transform's current version on the stored event again, as a
single replay does (`replay.replay`), or send the stored requests again exactly as first made
(`Store.resend_original`), when the handler was right and the destination was not. Either way a
delivery replayed already (with a sibling of the same event and transform, or by someone else)
is counted as done, not replayed twice.
"""

from __future__ import annotations

import logging

from dodo_transform.errors import DodoTransformError, StorageError
from dodo_transform.pipeline.replay import ReplayError, ReplayStore, replay
from dodo_transform.pipeline.transform_stage import RunAll
from dodo_transform.store import (
    REPLAYABLE_STATUSES,
    BulkReplay,
    Delivery,
    Filters,
    ReplayMode,
)
from dodo_transform.transforms.registry import Registry
from dodo_transform.transforms.sandbox_processes import PoolClosed

log = logging.getLogger("dodo_transform.pipeline")
SAMPLE = 5  # deliveries a preview shows


class BulkReplayError(DodoTransformError):
    """A bulk replay cannot be asked for as given (a status that is never replayed)."""


def check_filters(filters: Filters) -> None:
    """`BulkReplayError` if `filters` name a status no replay takes."""
    if filters.status is not None and filters.status not in REPLAYABLE_STATUSES:
        names = ", ".join(status.value for status in REPLAYABLE_STATUSES)
        raise BulkReplayError(
            f"status {filters.status.value}: only {names} deliveries are replayed"
        )


def preview(store: ReplayStore, filters: Filters) -> tuple[int, list[Delivery]]:
    """How many deliveries a bulk replay of `filters` would take now, and the first few."""
    check_filters(filters)
    sample = store.replayable_deliveries(filters, limit=SAMPLE)
    if len(sample) < SAMPLE:
        return len(sample), sample
    return count(store, filters), sample


def count(store: ReplayStore, filters: Filters, at_most: int | None = None) -> int:
    """How many deliveries a bulk replay of `filters` would take now (0 for a status that is
    never replayed); with `at_most`, counting stops there."""
    if filters.status is not None and filters.status not in REPLAYABLE_STATUSES:
        return 0
    return store.count_replayable(filters, at_most)


def run_step(
    store: ReplayStore, registry: Registry, bulk: BulkReplay, run_all: RunAll, limit: int
) -> int:
    """Replay the next `limit` deliveries of `bulk` (blocking); how many it took, 0 once the
    bulk replay has ended (finished here, or cancelled)."""
    filters = Filters.from_json(dict(bulk.filters))
    deliveries = store.replayable_deliveries(
        filters, after=bulk.cursor, up_to=bulk.last_delivery_id, limit=limit
    )
    if not deliveries:
        store.finish_bulk_replay(bulk.id, None)
        log.info("bulk replay finished", extra={"bulk_replay": bulk.id, "done": bulk.done})
        return 0
    taken = replayed = 0
    for delivery in deliveries:
        current = store.get_bulk_replay(bulk.id)
        if current is None or current.done_at is not None:
            break  # cancelled: what is left stays as it is
        replayed += replay_one(store, registry, delivery.id, bulk.mode, run_all)
        taken += 1
    if taken:
        cursor_to = deliveries[taken - 1].id
        store.advance_bulk_replay(bulk.id, bulk.cursor, cursor_to, taken, replayed)
        log.info(
            "bulk replay step",
            extra={"bulk_replay": bulk.id, "deliveries": taken, "replayed": replayed},
        )
    return taken


def replay_one(
    store: ReplayStore, registry: Registry, delivery_id: int, mode: ReplayMode, run_all: RunAll
) -> bool:
    """Replay one delivery of a bulk replay; whether it was (not: replayed already, with a
    sibling, or it cannot be, which is logged). Only a `StorageError` is raised."""
    try:
        if mode is ReplayMode.ORIGINAL:
            return store.resend_original(delivery_id)
        replay(store, registry, delivery_id, run_all)
        return True
    except ReplayError as error:
        log.info("bulk replay skipped", extra={"delivery_id": delivery_id, "reason": str(error)})
        return False
    except (StorageError, PoolClosed):
        raise
    except Exception:
        log.exception("bulk replay of a delivery failed", extra={"delivery_id": delivery_id})
        return False
