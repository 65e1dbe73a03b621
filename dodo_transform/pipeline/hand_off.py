"""Handing a round's new deliveries straight to the lanes that send them.

Without it, every delivery the transform stage stores would be read back by the delivery
stage's next claim: a query, a second write transaction (on SQLite, one more turn at the
lock the intake wants) and its request decoded again from JSON, to send what this process
had in memory a moment before. Instead, the transform stage asks each lane how much room it
has, stores that many of the round's pending deliveries already claimed (in the same
transaction as the outcomes: `store.HandOff`), and gives them to the lanes as they are.

What a lane has no room for is stored unclaimed and claimed as before, and a lane with a
backlog in the store gets nothing handed (`Receiver.room_for` says 0): its older deliveries
go first. A handed delivery is leased like a claimed one, so a worker that dies holding it
lets it go when the lease runs out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from dodo_transform.outgoing.destination import destination_of
from dodo_transform.store import (
    Delivery,
    DeliveryKey,
    DeliveryStatus,
    HandOff,
    Lane,
    NewDelivery,
    StoredEvent,
)


class Receiver(Protocol):
    """Where handed deliveries go: the delivery stage."""

    def room_for(self, lane: Lane) -> int:
        """How many new deliveries `lane` takes now (0: none, e.g. it has a backlog)."""
        ...

    async def receive(self, deliveries: list[Delivery]) -> None:
        """Send these (claimed for this process); give back what cannot be taken now."""
        ...


def plan(
    outcomes: Mapping[int, Sequence[NewDelivery]],
    receiver: Receiver,
    claim: int,
    lease_until: float,
) -> tuple[HandOff, dict[DeliveryKey, Lane]]:
    """The round's pending deliveries its lanes have room for, oldest event first: the
    hand-off to store them under, and each one's lane."""
    rooms: dict[Lane, int] = {}
    lanes: dict[DeliveryKey, Lane] = {}
    destinations: dict[str, str] = {}  # url -> its origin: a round's requests share a few
    for event_id, items in outcomes.items():
        for item in items:
            if item.status is not DeliveryStatus.PENDING or item.request is None:
                continue
            url = item.request.url
            destination = destinations.get(url)
            if destination is None:
                destination = destinations[url] = destination_of(url)
            lane = Lane(item.transform, destination)
            room = rooms.get(lane)
            if room is None:
                room = rooms[lane] = receiver.room_for(lane)
            if room > 0:
                rooms[lane] = room - 1
                lanes[DeliveryKey(event_id, item.transform, item.index)] = lane
    return HandOff(frozenset(lanes), claim, lease_until), lanes


def deliveries(
    handed: Mapping[DeliveryKey, int],
    lanes: Mapping[DeliveryKey, Lane],
    outcomes: Mapping[int, Sequence[NewDelivery]],
    events: Sequence[StoredEvent],
    claim: int,
    now: float,
) -> list[Delivery]:
    """The handed deliveries as the delivery stage takes them (as a claim would have read
    them from the store), from what the round holds in memory."""
    by_id = {event.id: event for event in events}
    made = []
    for event_id, items in outcomes.items():
        event = by_id[event_id]
        for item in items:
            key = DeliveryKey(event_id, item.transform, item.index)
            delivery_id = handed.get(key)
            if delivery_id is None:
                continue
            made.append(
                Delivery(
                    delivery_id,
                    event_id,
                    event.webhook_id,
                    event.event_type,
                    item.transform,
                    item.version,
                    0,
                    item.index,
                    DeliveryStatus.PENDING,
                    item.request,
                    item.logs or [],
                    None,
                    0,
                    now,
                    now,
                    now,
                    event.received_at,
                    lanes[key].destination,
                    claim,
                )
            )
    return made
