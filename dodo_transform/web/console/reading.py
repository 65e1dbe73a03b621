"""What the console's pages read from the store, beyond one record: filtered delivery lists and
the recent window the overview and the transforms page count over.

The `Store` protocol pages by status and cursor only, so the other filters
(transform, event type, time range, webhook or customer id) are applied here,
to the newest records, scanning at most `SCAN_LIMIT` of them per page shown;
the page says when it stopped there. Every function blocks: call it in a thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from dodo_transform.store import Delivery, DeliveryStatus, Store, StoredEvent

SCAN_LIMIT = 5000
PAGE = 500
WINDOW_LIMIT = 20_000  # records counted for the overview and the transforms page
RANGES = {"1h": 3600, "24h": 86400, "7d": 7 * 86400}


@dataclass(frozen=True)
class DeliveryFilter:
    status: DeliveryStatus | None = None
    transform: str = ""
    event_type: str = ""
    range: str = ""  # a key of RANGES, or "" for any time
    search: str = ""  # a webhook id, or a customer id (or any text) in the event body

    def since(self, now: float) -> float | None:
        seconds = RANGES.get(self.range)
        return None if seconds is None else now - seconds

    def matches(self, delivery: Delivery) -> bool:
        return (not self.transform or delivery.transform == self.transform) and (
            not self.event_type or delivery.event_type == self.event_type
        )

    @property
    def active(self) -> bool:
        return bool(self.status or self.transform or self.event_type or self.range or self.search)


@dataclass(frozen=True)
class DeliveryPage:
    deliveries: list[Delivery]
    older: int | None  # the cursor of the next page, if there may be one
    capped: bool  # the scan stopped at SCAN_LIMIT before filling the page


def _pages(
    store: Store, status: DeliveryStatus | None, before: int | None
) -> Iterator[list[Delivery]]:
    while True:
        page = store.list_deliveries(status, PAGE, before=before)
        if not page:
            return
        yield page
        before = page[-1].id


def deliveries(
    store: Store, wanted: DeliveryFilter, now: float, limit: int = 100, before: int | None = None
) -> DeliveryPage:
    """The newest deliveries that pass `wanted`, from `before` on."""
    since = wanted.since(now)
    search = Search(store, wanted.search.strip())
    found: list[Delivery] = []
    scanned = 0
    for page in _pages(store, wanted.status, before):
        for delivery in page:
            scanned += 1
            if since is not None and delivery.created_at < since:
                return DeliveryPage(found, None, capped=False)
            if wanted.matches(delivery) and search.matches(delivery):
                found.append(delivery)
                if len(found) == limit:
                    return DeliveryPage(found, delivery.id, capped=False)
            if scanned >= SCAN_LIMIT:
                return DeliveryPage(found, delivery.id, capped=True)
    return DeliveryPage(found, None, capped=False)


class Search:
    """Text that a delivery's webhook id or event body contains.

    Not the stored request: after a batched send it is the whole batch, and would
    match every other message in it.
    """

    def __init__(self, store: Store, text: str) -> None:
        self.store, self.text = store, text
        self._bodies: dict[int, bool] = {}

    def matches(self, delivery: Delivery) -> bool:
        if not self.text or self.text in delivery.webhook_id:
            return True
        if delivery.event_id not in self._bodies:
            event = self.store.get_event(delivery.event_id)
            self._bodies[delivery.event_id] = event is not None and self.text.encode() in event.body
        return self._bodies[delivery.event_id]


def recent_deliveries(store: Store, since: float) -> list[Delivery]:
    """Deliveries made since `since`, newest first (at most WINDOW_LIMIT)."""
    found: list[Delivery] = []
    for page in _pages(store, None, None):
        for delivery in page:
            if delivery.created_at < since or len(found) >= WINDOW_LIMIT:
                return found
            found.append(delivery)
    return found


def recent_events(store: Store, since: float) -> list[StoredEvent]:
    """Events received since `since`, newest first (at most WINDOW_LIMIT)."""
    found: list[StoredEvent] = []
    before = None
    while len(found) < WINDOW_LIMIT:
        page = store.list_events(PAGE, before=before)
        if not page:
            break
        for event in page:
            if event.received_at < since:
                return found
            found.append(event)
        before = page[-1].id
    return found[:WINDOW_LIMIT]
