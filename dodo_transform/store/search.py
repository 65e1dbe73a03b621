"""Finding stored events by what their bodies name: the search terms, and the filters.

An event is indexed by its webhook id and the terms of its body that a person looks for: ids
(the values of every field named `id` or `..._id`: customer, payment, subscription, product,
invoice ...), emails and names (`email`, `name`, `..._name`), each word of them, in lower
case (worked out by `search_terms.py`). They go into the `event_terms` table (term, event_id)
when the worker has transformed the event, in the transaction that stores its outcomes
(`SqlWrites._terms`): off the intake's path, where each webhook's answer would wait for them.
A search is one B-tree lookup on both databases (one SQL text for both) however many events
there are; an event not transformed yet (a second or two, longer behind a burst) is not found
yet.

A search matches whole words, case-insensitively, every word of it: `cus_8VbC` finds nothing,
`CUS_8VBC6JDZZPEQFBPUDPJ0K` finds the customer's events, `ada lovelace` finds events naming
both words. Substrings are not searched: they would need an index of trigrams several times the
size of the bodies, and the ids and emails people paste are whole.

The same terms say which events name a customer, for erasure (`erasure.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dodo_transform import search_terms
from dodo_transform.store.records import DeliveryStatus

# A term naming more events than this is searched newest first (see `filter_conditions`).
COMMON = 5000
# A search of more words than this is refused: each word is one more lookup.
MAX_QUERY_WORDS = 8


@dataclass(frozen=True)
class Filters:
    """Which deliveries (or events) a list, a count or a bulk replay covers; None is any.

    `q` is searched in the event body (see the module docstring); `destination` is a host
    (`api.segment.io`) or an origin (`https://api.segment.io`); `since` and `until` bound the
    time the event was received (Unix seconds, `until` excluded).
    """

    q: str | None = None
    transform: str | None = None
    event_type: str | None = None
    status: DeliveryStatus | None = None
    destination: str | None = None
    since: float | None = None
    until: float | None = None

    def to_json(self) -> dict[str, Any]:
        """As stored with a bulk replay (and shown): only what is set."""
        return {
            key: value.value if isinstance(value, DeliveryStatus) else value
            for key, value in vars(self).items()
            if value is not None
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Filters:
        status = data.get("status")
        return cls(**(data | {"status": None if status is None else DeliveryStatus(status)}))


class SearchError(ValueError):
    """A search that cannot be run as given (too many words, nothing to look for)."""


def query_terms(q: str) -> list[str]:
    """The words a search looks for, each of which an event must name."""
    words = list(dict.fromkeys(search_terms.words(q)))
    if not words:
        raise SearchError(
            f"q: {q!r} has nothing to search for; give an id, an email or a name, "
            "e.g. q=cus_8VbC6JDZzPEqfBPUdpj0K"
        )
    if len(words) > MAX_QUERY_WORDS:
        raise SearchError(f"q: at most {MAX_QUERY_WORDS} words are searched; {len(words)} given")
    return words


def filter_conditions(
    filters: Filters, common: frozenset[str] = frozenset()
) -> tuple[list[str], list[Any]]:
    """SQL conditions (written with `?`, on `deliveries d JOIN events e`) and their parameters.

    A search term is `d.event_id IN (...)`: its events drive the lookup through the
    deliveries' index on `event_id`, rather than every delivery being checked in turn. A term
    in `common` (one naming more than `COMMON` events: a business id, a frequent name) is the
    other way round, checked for each delivery newest first, which finds a page at once where
    gathering and sorting its million events would take seconds (see `SqlReads.common_terms`).
    """
    conditions, params = _delivery_conditions(filters)
    if filters.q is not None:
        for term in query_terms(filters.q):
            conditions.append(_searched("d.event_id", term in common))
            params.append(term)
    on_events, their_params = event_conditions(filters, search=False)
    return conditions + on_events, params + their_params


def _searched(event_id: str, common: bool) -> str:
    if common:
        return f"EXISTS (SELECT 1 FROM event_terms t WHERE t.term = ? AND t.event_id = {event_id})"
    return f"{event_id} IN (SELECT event_id FROM event_terms WHERE term = ?)"


def needs_events(filters: Filters) -> bool:
    """Whether `filters` say anything about the events table's own columns (else a count of
    deliveries need not join it)."""
    return any(value is not None for value in (filters.event_type, filters.since, filters.until))


def event_conditions(
    filters: Filters, *, search: bool = True, common: frozenset[str] = frozenset()
) -> tuple[list[str], list[Any]]:
    """SQL conditions on `events e` alone: the search, the type, the time received."""
    conditions: list[str] = []
    params: list[Any] = []
    if search and filters.q is not None:
        for term in query_terms(filters.q):
            conditions.append(_searched("e.id", term in common))
            params.append(term)
    if filters.event_type is not None:
        conditions.append("e.event_type = ?")
        params.append(filters.event_type)
    if filters.since is not None:
        conditions.append("e.received_at >= ?")
        params.append(filters.since)
    if filters.until is not None:
        conditions.append("e.received_at < ?")
        params.append(filters.until)
    return conditions, params


def _delivery_conditions(filters: Filters) -> tuple[list[str], list[Any]]:
    conditions: list[str] = []
    params: list[Any] = []
    if filters.status is not None:
        conditions.append("d.status = ?")
        params.append(filters.status.value)
    if filters.transform is not None:
        conditions.append("d.transform = ?")
        params.append(filters.transform)
    if filters.destination is not None:
        origin = filters.destination.rstrip("/").lower()
        if "://" in origin:
            conditions.append("d.destination = ?")
            params.append(origin)
        else:  # a host: on any scheme and port
            conditions.append(
                "(d.destination = ? OR d.destination = ? OR d.destination LIKE ?"
                " OR d.destination LIKE ?)"
            )
            params += [f"https://{origin}", f"http://{origin}"]
            params += [f"https://{origin}:%", f"http://{origin}:%"]
    return conditions, params


def has_delivery_conditions(filters: Filters) -> bool:
    """Whether `filters` say anything about deliveries (else they are about events alone)."""
    return any(
        value is not None for value in (filters.status, filters.transform, filters.destination)
    )


def delivery_exists(filters: Filters) -> tuple[str, list[Any]]:
    """A condition on `events e`: it has a delivery the filters choose."""
    conditions, params = _delivery_conditions(filters)
    where = " AND ".join(["d.event_id = e.id", *conditions])
    return f"EXISTS (SELECT 1 FROM deliveries d WHERE {where})", params
