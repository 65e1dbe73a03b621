"""From a transform's outcome to the deliveries stored for it."""

from __future__ import annotations

from typing import Any

from dodo_transform.outgoing import segment
from dodo_transform.store import DeliveryStatus, NewDelivery
from dodo_transform.transforms.engine import Outcome, OutcomeKind, Transform

# An outcome that delivers nothing is stored as one delivery in the matching status.
_NOTHING_SENT = {
    OutcomeKind.SKIPPED: DeliveryStatus.SKIPPED,
    OutcomeKind.CANCELLED: DeliveryStatus.CANCELLED,
}


def outcome_deliveries(transform: Transform, outcome: Outcome) -> list[NewDelivery]:
    """What to store for one transform's outcome on one event."""
    logs = [list(line) for line in outcome.logs]

    def item(index: int, status: DeliveryStatus, **rest: Any) -> NewDelivery:
        return NewDelivery(transform.name, transform.version, index, status, logs=logs, **rest)

    if outcome.kind is OutcomeKind.ERROR:
        return [item(0, DeliveryStatus.FAILED, error=outcome.error)]
    if outcome.kind is not OutcomeKind.DELIVER:
        return [item(0, _NOTHING_SENT[outcome.kind])]
    deliveries = []
    for index, request in enumerate(outcome.requests):
        problems = segment.drops(request.url, request.payload)
        if problems:
            deliveries.append(
                item(index, DeliveryStatus.INVALID, request=request, error="; ".join(problems))
            )
        else:
            deliveries.append(item(index, DeliveryStatus.PENDING, request=request))
    return deliveries
