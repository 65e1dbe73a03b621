"""Replays: re-run the current version of a transform on a stored event.

The web edge and the CLI only ask (`Store.request_replays`); the worker,
where transforms are compiled and user JavaScript runs, claims the requests
and runs them here. The old outcome is marked `replayed` and the new one is
stored for the delivery stage, exactly as for a new event.
"""

from __future__ import annotations

import logging
from typing import Protocol

from dodo_transform.errors import DodoTransformError, StorageError
from dodo_transform.pipeline.outcomes import outcome_deliveries
from dodo_transform.pipeline.transform_stage import RunAll, run_in_this_process
from dodo_transform.store import REPLAYABLE_STATUSES, Delivery, NewDelivery, Reads, Requests
from dodo_transform.transforms.event import Event
from dodo_transform.transforms.registry import Registry
from dodo_transform.transforms.sandbox_processes import PoolClosed

log = logging.getLogger("dodo_transform.pipeline")


class ReplayStore(Reads, Requests, Protocol):
    """What a replay reads and writes."""


class ReplayError(DodoTransformError):
    """A delivery cannot be replayed (unknown, not failed, dead or held, or its transform is
    gone)."""


class UnknownDelivery(ReplayError):
    """No delivery has this id."""


def check_replayable(store: ReplayStore, delivery_id: int) -> Delivery:
    """The delivery, if it exists and is failed, dead or held; `ReplayError` otherwise."""
    delivery = store.get_delivery(delivery_id)
    if delivery is None:
        raise UnknownDelivery(f"no delivery {delivery_id}")
    if delivery.status not in REPLAYABLE_STATUSES:
        raise ReplayError(
            f"delivery {delivery_id} is {delivery.status}; "
            "only failed or dead deliveries, and held ones (invalid, blocked, dry_run), "
            "are replayed"
        )
    return delivery


def replay(
    store: ReplayStore, registry: Registry, delivery_id: int, run_all: RunAll = run_in_this_process
) -> list[NewDelivery]:
    """Run the replay of one delivery now; the new deliveries stored for it."""
    delivery = check_replayable(store, delivery_id)
    transform = registry.current().get(delivery.transform)
    if transform is None:
        raise ReplayError(f"transform {delivery.transform} is no longer loaded")
    stored = store.get_event(delivery.event_id)
    if stored is None:
        raise ReplayError(f"the event of delivery {delivery_id} has been pruned")
    try:
        body = stored.body.decode("utf-8")
        event = Event(stored.event_type, body, stored.webhook_id, stored.mode)
    except UnicodeDecodeError:
        raise ReplayError(f"the event of delivery {delivery_id} is not UTF-8 text") from None
    (outcome,) = run_all([(transform, event)])
    results = outcome_deliveries(transform, outcome)
    if not store.replace_outcomes(stored.id, transform.name, results, delivery_id):
        raise ReplayError(f"delivery {delivery_id} was replayed already, by another request")
    log.info(
        "replayed",
        extra={
            "webhook_id": stored.webhook_id,
            "transform": transform.name,
            "version": transform.version,
            "delivery_id": delivery_id,
        },
    )
    return results


def run_requested(
    store: ReplayStore, registry: Registry, delivery_id: int, run_all: RunAll = run_in_this_process
) -> None:
    """Run one claimed replay request and record how it ended. Only a `StorageError`
    is raised: the request stays claimable and is tried again once the store is back."""
    try:
        results = replay(store, registry, delivery_id, run_all)
    except ReplayError as error:
        log.warning("replay refused", extra={"delivery_id": delivery_id, "error": str(error)})
        store.finish_replay(delivery_id, (), str(error))
        return
    except (StorageError, PoolClosed):
        raise  # not the replay's fault: the request stays claimable
    except Exception as error:
        log.exception("replay failed", extra={"delivery_id": delivery_id})
        store.finish_replay(delivery_id, (), f"the replay failed: {type(error).__name__}: {error}")
        return
    store.finish_replay(delivery_id, [result.status for result in results], None)
