"""What the console's pages read from the store, beyond one record: filtered delivery lists and
the recent window the overview and the transforms page count over.

The deliveries page asks the store for what its filters choose (`store.Filters`: the store
searches and filters through its indexes). Every function blocks: call it in a thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from dodo_transform.store import Delivery, DeliveryStatus, Filters, Store, StoredEvent

PAGE = 500
WINDOW_LIMIT = 20_000  # records counted for the overview and the transforms page
RANGES = {"1h": 3600, "24h": 86400, "7d": 7 * 86400}


@dataclass(frozen=True)
class DeliveryFilter:
    """The deliveries page's filters, as its form and its URL give them."""

    status: DeliveryStatus | None = None
    transform: str = ""
    event_type: str = ""
    range: str = ""  # a key of RANGES, or "" for any time
    search: str = ""  # words the event names: its webhook id, a customer id, an email ...
    destination: str = ""  # a host or an origin
    since: float | None = None
    until: float | None = None

    def filters(self, now: float) -> Filters:
        """What the store is asked for: `range` is a `since` relative to `now`."""
        seconds = RANGES.get(self.range)
        since = self.since if seconds is None else max(now - seconds, self.since or 0)
        return Filters(
            q=self.search or None,
            transform=self.transform or None,
            event_type=self.event_type or None,
            status=self.status,
            destination=self.destination or None,
            since=since,
            until=self.until,
        )

    @property
    def active(self) -> bool:
        return bool(
            self.status
            or self.transform
            or self.event_type
            or self.range
            or self.search
            or self.destination
            or self.since is not None
            or self.until is not None
        )


@dataclass(frozen=True)
class DeliveryPage:
    deliveries: list[Delivery]
    older: int | None  # the cursor of the next page, if there may be one


def deliveries(
    store: Store, wanted: DeliveryFilter, now: float, limit: int = 100, before: int | None = None
) -> DeliveryPage:
    """The newest deliveries that pass `wanted`, from `before` on (the store filters them,
    through its indexes: see store/search.py)."""
    found = store.list_deliveries(None, limit, before=before, filters=wanted.filters(now))
    return DeliveryPage(found, found[-1].id if len(found) == limit else None)


def _pages(
    store: Store, status: DeliveryStatus | None, before: int | None
) -> Iterator[list[Delivery]]:
    while True:
        page = store.list_deliveries(status, PAGE, before=before)
        if not page:
            return
        yield page
        before = page[-1].id


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
