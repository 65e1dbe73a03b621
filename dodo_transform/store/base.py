"""The `Store` protocol: what the pipeline and the web edge need from durable storage, in
role-sized parts.

A store must commit before it returns (an acknowledged webhook is on disk),
claim work with leases that the claimer renews while it works (a worker that
dies stops renewing and lets its leases run out), and raise only
`StorageError` for its own failures. The behavioural suite in
`tests/test_store.py` is what "implements `Store`" means.

Each part asks what one role needs, and each role's code is typed with its part: the
intake (`IntakeStore`), the transform and delivery stages (`EventWork`, `DeliveryWork`),
the pipeline's leases (`LeaseWork`), requests the web edge makes and the worker runs
(`Requests`), what the edges read (`Reads`), the console's sessions (`Sessions`) and
upkeep. `Store` is all of them, what a backend implements.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from dodo_transform.store.erasure import Erased
from dodo_transform.store.heartbeats import Heartbeat
from dodo_transform.store.records import (
    Attempt,
    AuditEntry,
    Backfill,
    BulkReplay,
    Delivery,
    DeliveryStatus,
    DeliveryUpdate,
    HandOff,
    Lane,
    NewDelivery,
    NewEvent,
    Recorded,
    ReplayMode,
    ReplayRequest,
    StoredEvent,
    TransformVersion,
)
from dodo_transform.store.search import Filters


class IntakeStore(Protocol):
    """What the intake needs: storing received events, first in line."""

    def add_events(self, events: Sequence[NewEvent]) -> list[tuple[int, bool]]: ...
    def priority(self) -> AbstractContextManager[None]:
        """Held by the intake while it has events to store: other writers that queue behind
        one lock (the worker, on SQLite) let it go first."""
        ...


class EventWork(Protocol):
    """What the transform stage needs: events to claim, their outcomes to store."""

    def claim_events(self, limit: int, lease_seconds: float) -> list[StoredEvent]: ...
    # Store the outcomes and mark the events done, in one transaction; with `claims` (event
    # id -> the claim it was taken under, `StoredEvent.claim`) only for events still held under
    # that claim: the ids of the others, whose outcomes were dropped, are returned. The pending
    # deliveries `hand_off` names are stored claimed under its claim (for this worker to send
    # without claiming them again); their ids are returned. `terms` (event id -> its search
    # terms, `search_terms.event_terms`) spares reading those events' bodies back to make them.
    def record_outcomes(
        self,
        outcomes: Mapping[int, Sequence[NewDelivery]],
        claims: Mapping[int, int] | None = None,
        hand_off: HandOff | None = None,
        terms: Mapping[int, Sequence[str]] | None = None,
    ) -> Recorded: ...


class DeliveryWork(Protocol):
    """What the delivery stage needs: lanes to claim from, results to store."""

    # The lanes (transform, destination) with a pending delivery, due now or later.
    def pending_lanes(self) -> list[Lane]: ...
    def count_waiting(self, lane: Lane) -> int: ...
    # Up to `rooms[lane]` due deliveries of each lane, oldest due first, under a new claim.
    def claim_deliveries(
        self, rooms: Mapping[Lane, int], lease_seconds: float
    ) -> list[Delivery]: ...
    # Store results; one made under a claim the delivery is no longer held under (the lease
    # ran out and it was claimed again) is dropped: those are returned. One without an
    # attempt or an error keeps the stored error (`records.keeps_error`).
    def record_results(self, updates: Sequence[DeliveryUpdate]) -> list[DeliveryUpdate]: ...
    def release(self, delivery_ids: Sequence[int]) -> None: ...


class LeaseWork(Protocol):
    """What keeps a pipeline's claims its own, and wakes it."""

    # Extend every lease this process holds to `lease_seconds` from now; how many there were.
    def renew(self, lease_seconds: float) -> int: ...
    # How many processes running a pipeline renewed their leases within `within_seconds`
    # (at least 1): they share each destination's rate limit.
    def live_workers(self, within_seconds: float) -> int: ...
    # Call `wake` (from any thread) when any process stores new work: `wake(True)` when it was
    # only new events, `wake(False)` for a replay request, a backfill, or what may have come
    # while no one listened. The function returned stops it. None: this store cannot tell, and
    # the pipeline finds new work by polling often.
    def listen(self, wake: Callable[[bool], None]) -> Callable[[], None] | None: ...


class Requests(Protocol):
    """Replays and backfills: asked for by the web edge, run by a worker."""

    def request_replays(self, delivery_ids: Sequence[int]) -> None: ...
    def claim_replays(self, limit: int, lease_seconds: float) -> list[ReplayRequest]: ...
    def finish_replay(
        self, delivery_id: int, statuses: Sequence[DeliveryStatus], error: str | None
    ) -> None: ...
    def get_replay(self, delivery_id: int) -> ReplayRequest | None: ...
    # A replay's new outcome, superseding the transform's current one for the event; with
    # `replacing`, only while that delivery is still one to replay (else False, nothing stored).
    def replace_outcomes(
        self,
        event_id: int,
        transform: str,
        results: Sequence[NewDelivery],
        replacing: int | None = None,
    ) -> bool: ...
    # Bulk replays: record one of what `filters` choose now (counted); move its cursor from
    # `cursor` to `to` counting a step (False if another worker moved it first); end it;
    # cancel it while it runs (False if it had ended). See pipeline/bulk_replay.py.
    def start_bulk_replay(self, filters: Filters, mode: ReplayMode) -> int: ...
    def advance_bulk_replay(
        self, bulk_id: int, cursor: int, to: int, done: int, replayed: int
    ) -> bool: ...
    def finish_bulk_replay(self, bulk_id: int, error: str | None) -> None: ...
    def cancel_bulk_replay(self, bulk_id: int) -> bool: ...
    def unfinished_bulk_replays(self) -> list[BulkReplay]: ...
    def get_bulk_replay(self, bulk_id: int) -> BulkReplay | None: ...
    def list_bulk_replays(self, limit: int = 20) -> list[BulkReplay]: ...
    # The replayable deliveries `filters` choose, in id order after `after`, up to `up_to`.
    def replayable_deliveries(
        self, filters: Filters, *, after: int = 0, up_to: int = ..., limit: int = 100
    ) -> list[Delivery]: ...
    def count_replayable(self, filters: Filters, at_most: int | None = None) -> int: ...
    # Send a replayable delivery's stored request again, as a new pending delivery (with its
    # replayable siblings of the same event and transform); False if it may not be.
    def resend_original(self, delivery_id: int) -> bool: ...
    # Record a backfill of `transform` over the events stored so far; its id.
    def start_backfill(
        self, transform: str, event_types: Sequence[str] | None, since: float | None
    ) -> int: ...
    # `count_backfill` is how many there are in all (after `after`, up to `up_to`), by type.
    # The next transformed events after `after` (up to `up_to`, in id order) in the scope that
    # `transform` has no delivery for.
    def backfill_events(
        self,
        transform: str,
        *,
        event_types: Sequence[str] | None,
        since: float | None,
        after: int,
        up_to: int,
        limit: int,
    ) -> list[StoredEvent]: ...
    def count_backfill(
        self,
        transform: str,
        *,
        event_types: Sequence[str] | None,
        since: float | None,
        after: int = 0,
        up_to: int | None = None,
    ) -> dict[str, int]: ...
    # Store one step's outcomes (event id -> deliveries, generation 0, none for an event that
    # has a delivery from the transform by now) and move the cursor from `cursor` to `to`, in
    # one transaction; False, storing nothing, if the cursor is no longer `cursor`.
    def advance_backfill(
        self, backfill_id: int, cursor: int, to: int, outcomes: Mapping[int, Sequence[NewDelivery]]
    ) -> bool: ...
    def finish_backfill(self, backfill_id: int, error: str | None) -> None: ...
    def unfinished_backfills(self) -> list[Backfill]: ...
    def list_backfills(self, limit: int = 20) -> list[Backfill]: ...
    def get_backfill(self, backfill_id: int) -> Backfill | None: ...


class Reads(Protocol):
    """What the edges show, and the transform versions the pipeline records for them."""

    def get_event(self, event_id: int) -> StoredEvent | None: ...
    def get_delivery(self, delivery_id: int) -> Delivery | None: ...
    def attempts(self, delivery_id: int) -> list[Attempt]: ...
    def list_deliveries(
        self,
        status: DeliveryStatus | None = None,
        limit: int = 100,
        event_id: int | None = None,
        *,
        event_ids: Sequence[int] | None = None,
        before: int | None = None,
        transform: str | None = None,
        since: float | None = None,
        filters: Filters | None = None,
    ) -> list[Delivery]: ...
    def list_events(
        self, limit: int = 100, *, before: int | None = None, filters: Filters | None = None
    ) -> list[StoredEvent]: ...
    # How many deliveries `filters` choose (with an id up to `up_to`).
    def count_deliveries(self, filters: Filters, *, up_to: int = ...) -> int: ...
    # The words of a search that name so many events that they are checked newest first.
    def common_terms(self, filters: Filters) -> frozenset[str]: ...
    def counts(self) -> dict[DeliveryStatus, int]: ...
    def pending_events(self) -> int: ...
    # Keep each version once per (name, version), idempotently (a version seen again keeps its
    # first `first_seen`); how many were new.
    def record_versions(self, versions: Sequence[TransformVersion]) -> int: ...
    # Every kept version of transform `name`, newest first.
    def list_versions(self, name: str) -> list[TransformVersion]: ...
    def get_version(self, name: str, version: str) -> TransformVersion | None: ...


class Audit(Protocol):
    """The audit trail: who changed or replayed what, and when (see `AuditEntry`)."""

    def record_audit(self, entry: AuditEntry) -> None: ...
    # Newest first; `before` (an entry id) continues a previous page.
    def list_audit(self, limit: int = 100, *, before: int | None = None) -> list[AuditEntry]: ...


class Sessions(Protocol):
    """The console's sessions and login attempts (see store/sessions.py)."""

    # Keep session `key` for `seconds`; `session_open` while it is kept, `close_session` ends it.
    def open_session(self, key: str, seconds: float) -> None: ...
    def session_open(self, key: str) -> bool: ...
    def close_session(self, key: str) -> None: ...
    # Count a login attempt from `address`: (attempts in its window of `window_seconds` so far,
    # this one included, seconds until the window ends). `forget_login_attempts` after a login.
    def count_login_attempt(self, address: str, window_seconds: float) -> tuple[int, float]: ...
    def forget_login_attempts(self, address: str) -> None: ...


class Heartbeats(Protocol):
    """Which instances are alive, and what they run (see `heartbeats.py`)."""

    def beat(self, heartbeat: Heartbeat) -> None: ...
    def heartbeats(self, within_seconds: float) -> list[Heartbeat]: ...
    def forget_instance(self, instance: str) -> None: ...


class Store(
    IntakeStore,
    EventWork,
    DeliveryWork,
    LeaseWork,
    Requests,
    Reads,
    Sessions,
    Heartbeats,
    Audit,
    Protocol,
):
    """Durable storage, every part of it. Every method may raise `StorageError`."""

    # Erasure (see erasure.py): the events naming any of `identifiers`; deleting events with
    # everything stored of them, leaving no copy in the files.
    def events_naming(self, identifiers: Sequence[str]) -> list[StoredEvent]: ...
    def erase_events(self, event_ids: Sequence[int], identifiers: Sequence[str] = ()) -> Erased: ...
    def count_deliveries_of(self, event_ids: Sequence[int]) -> int: ...
    # Delete settled events past their retention (see `SqlWrites.prune`); how many.
    def prune(
        self, older_than: float, by_status: Mapping[DeliveryStatus, float] | None = None
    ) -> int: ...
    def ping(self) -> None: ...
    def close(self) -> None: ...
