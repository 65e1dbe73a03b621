"""Erasing one customer (GDPR art. 17): every stored event whose body names them, with its
deliveries, attempts and search terms, leaving no copy of the text in the database.

Who is named by an id or an email. The events are found through the search terms (the customer
id and email fields, see search.py), then by every identifier those events give for the same
customer (an email finds the customer id, which finds the events that carry only the id), then
by a scan of the bodies for those identifiers' exact bytes, so a copy in a field search does not
index (a note, metadata) is found too. `count` says what `erase` would delete; `erase` deletes it
in one transaction (the deliveries, attempts, replay requests and terms go with their events).

No copy is left behind in the files: SQLite runs with `secure_delete` (what a delete frees is
overwritten with zeros, in the tables and the indexes), and after an erasure its WAL is
checkpointed and truncated, so the old pages are not kept there either. PostgreSQL keeps
deleted rows in its files until they are vacuumed: `VACUUM FULL` the tables to rewrite them
(docs/operations.md says when), and its WAL and backups hold copies until they are recycled.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from dodo_transform.search_terms import MAX_TERM
from dodo_transform.store.records import StoredEvent

# Identifiers followed from one customer's events to others at most: a body naming thousands
# of customers (a bulk export) must not turn one erasure into everyone's.
MAX_IDENTIFIERS = 20
# The fields of a body that say who the customer is (Dodo's `data.customer`).
CUSTOMER_FIELDS = ("customer_id", "email")


class ErasureError(ValueError):
    """An erasure that cannot be run as given (no identifier, or one too long)."""


class ErasingStore(Protocol):
    def events_naming(self, identifiers: Sequence[str]) -> list[StoredEvent]: ...
    def erase_events(self, event_ids: Sequence[int], identifiers: Sequence[str] = ()) -> Erased: ...


@dataclass(frozen=True)
class Found:
    """The events that name a customer, and the identifiers that found them."""

    event_ids: list[int]
    identifiers: list[str]


@dataclass(frozen=True)
class Erased:
    events: int
    deliveries: int
    # SQLite: whether the WAL could be truncated at once (a reader held it: it is, at the next
    # checkpoint). Always True on PostgreSQL, where VACUUM FULL is the operator's step.
    wal_cleared: bool = True


def identifier(who: str) -> str:
    """`who` as erasure takes it: an id or an email, trimmed."""
    cleaned = who.strip()
    if not cleaned or len(cleaned) > MAX_TERM or any(c.isspace() for c in cleaned):
        raise ErasureError(
            f"customer: {who!r} is not a customer id or an email; give one, e.g."
            " cus_8VbC6JDZzPEqfBPUdpj0K or ada@example.com"
        )
    return cleaned


def find(store: ErasingStore, who: str) -> Found:
    """Every stored event that names the customer `who` (an id or an email)."""
    known = [identifier(who)]
    events: dict[int, StoredEvent] = {}
    while True:
        for event in store.events_naming(known):
            events.setdefault(event.id, event)
        more = [i for i in _same_customer(events.values(), known) if i not in known]
        if not more or len(known) >= MAX_IDENTIFIERS:
            return Found(sorted(events), known)
        known += more[: MAX_IDENTIFIERS - len(known)]


def _same_customer(events: Iterable[StoredEvent], known: Sequence[str]) -> Iterator[str]:
    """The identifiers of the customer an event is about, where that customer is one of
    `known` (an event that only mentions them, about someone else, adds nobody)."""
    wanted = {value.lower() for value in known}
    for event in events:
        try:
            customer = json.loads(event.body)["data"]["customer"]
        except (ValueError, KeyError, TypeError):
            continue
        if not isinstance(customer, dict):
            continue
        values = [customer.get(field) for field in CUSTOMER_FIELDS]
        found = [value.strip() for value in values if isinstance(value, str) and value.strip()]
        if any(value.lower() in wanted for value in found):
            yield from found
