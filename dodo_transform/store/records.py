"""What the store keeps, as typed records: events, deliveries, attempts, replay requests.

Every store (SQLite today, PostgreSQL next) takes and returns these, so the
pipeline, the web edge and the CLI never see a row or a column name.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

from dodo_transform.outgoing import OutgoingRequest


class DeliveryStatus(StrEnum):
    """Where one delivery stands. Stored as its value; the API shows the same words."""

    PENDING = "pending"  # waiting for its next attempt
    DELIVERED = "delivered"  # the destination answered 2xx
    DRY_RUN = "dry_run"  # recorded, not sent (no write key configured)
    DEAD = "dead"  # retries exhausted, or a final 4xx
    BLOCKED = "blocked"  # the destination is not on the allowlist; never sent
    INVALID = "invalid"  # Segment would drop it silently; never sent
    FAILED = "failed"  # the transform failed (its error is kept); not retried until replayed
    SKIPPED = "skipped"  # the handler left `url` empty
    CANCELLED = "cancelled"  # the handler set `cancel`
    REPLAYED = "replayed"  # superseded by a replay

    @property
    def replayable(self) -> bool:
        return self in REPLAYABLE_STATUSES


FINAL_STATUSES = frozenset(
    {
        DeliveryStatus.DELIVERED,
        DeliveryStatus.DRY_RUN,
        DeliveryStatus.DEAD,
        DeliveryStatus.BLOCKED,
        DeliveryStatus.INVALID,
        DeliveryStatus.SKIPPED,
        DeliveryStatus.CANCELLED,
    }
)
# In the order the API names them. Held messages are released the same way: replayed after
# the handler, the allowlist or the write key is fixed, they run through the current version.
REPLAYABLE_STATUSES = (
    DeliveryStatus.FAILED,
    DeliveryStatus.DEAD,
    DeliveryStatus.INVALID,
    DeliveryStatus.BLOCKED,
    DeliveryStatus.DRY_RUN,
)


@dataclass(frozen=True)
class NewEvent:
    """A verified webhook, about to be stored."""

    webhook_id: str
    event_type: str
    body: bytes
    mode: str = "live"  # `test` when Dodo's test-mode endpoint's secret verified it


@dataclass(frozen=True)
class StoredEvent:
    id: int
    webhook_id: str
    event_type: str
    body: bytes
    received_at: float
    # The claim this event was taken under (0: not claimed): outcomes are stored only while it
    # is still the event's claim, so a worker whose lease ran out cannot store them twice.
    claim: int = 0
    # `live` or `test`: which of Dodo's endpoints sent it (None: stored before modes were, or
    # not read here: the pipeline needs none).
    mode: str | None = None


@dataclass(frozen=True)
class NewDelivery:
    """One item of a transform's outcome for one event, about to be stored."""

    transform: str
    version: str
    index: int
    status: DeliveryStatus
    request: OutgoingRequest | None = None
    logs: list[list[str]] | None = None
    error: str | None = None


@dataclass(frozen=True)
class Delivery:
    id: int
    event_id: int
    webhook_id: str
    event_type: str
    transform: str
    version: str
    generation: int
    index: int
    status: DeliveryStatus
    request: OutgoingRequest | None
    logs: list[list[str]]
    error: str | None
    attempts: int
    next_attempt_at: float
    created_at: float
    updated_at: float
    received_at: float
    destination: str = ""  # the origin its request goes to (`outgoing.destination_of`)
    claim: int = 0  # the claim it was taken under; 0 when not claimed
    # The headers its last attempt sent, values of credentials replaced (never the values).
    sent_headers: Mapping[str, str] | None = None

    @property
    def lane(self) -> Lane:
        return Lane(self.transform, self.destination)


@dataclass(frozen=True)
class DeliveryKey:
    """Which delivery of an event's outcomes (generation 0): what a hand-off names."""

    event_id: int
    transform: str
    index: int


@dataclass(frozen=True)
class HandOff:
    """Pending deliveries of a round to store already claimed, for the worker that made them
    to send at once: under `claim`, leased until `lease_until` (see `EventWork`)."""

    keys: frozenset[DeliveryKey]
    claim: int
    lease_until: float


class Recorded(NamedTuple):
    """What `record_outcomes` did: the events whose outcomes were dropped (claimed again
    since), and the id of each delivery stored under the hand-off's claim."""

    dropped: list[int]
    handed: dict[DeliveryKey, int]


class Lane(NamedTuple):
    """Where deliveries queue: one transform's requests to one destination (an origin).
    Each lane is claimed, paced and paused on its own, so no lane waits for another."""

    transform: str
    destination: str


@dataclass(frozen=True)
class Attempt:
    at: float
    status_code: int | None
    error: str | None
    duration_ms: float


@dataclass(frozen=True)
class DeliveryUpdate:
    """A delivery's new status after a round, with the attempt made (None if none was)."""

    delivery_id: int
    status: DeliveryStatus
    attempt: Attempt | None = None
    error: str | None = None
    next_attempt_at: float = 0.0
    request: OutgoingRequest | None = None  # replaces the stored request (a dry run's exact one)
    # The claim the result was made under: stored only if the delivery is still held under it
    # (None: no such check, for tools and tests that did not claim it).
    claim: int | None = None
    sent_headers: Mapping[str, str] | None = None  # as `Delivery.sent_headers`


@dataclass(frozen=True)
class ReplayRequest:
    """A replay asked for by the API or the CLI, run by the worker.

    `done_at` is None until the worker has run it; then either `statuses` (of the new
    deliveries) or `error` (why it could not run) is set.
    """

    delivery_id: int
    requested_at: float
    done_at: float | None = None
    statuses: tuple[DeliveryStatus, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class TransformVersion:
    """One version of a transform the service has run: its source, its settings, its hash
    (`version`, as `Transform.version`: of the source and the settings) and when the store
    first saw it."""

    name: str
    version: str
    source: str
    first_seen: float = 0.0  # set by the store when it records the version
    # Its table of transforms.toml as written, secrets redacted (`TransformSettings.shown`).
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Backfill:
    """A transform run over stored events it has no delivery for (added after they came).

    It covers the events up to `last_event_id`, the newest when it started (later ones reach
    the transform through the transform stage), received since `since`, of `event_types`
    (None: every type). The worker takes them in id order; `cursor` is the last id done, so
    a restarted worker goes on where the last one stopped.
    """

    id: int
    transform: str
    event_types: tuple[str, ...] | None
    since: float | None
    last_event_id: int
    cursor: int
    ran: int  # events the transform ran on so far
    created_at: float
    done_at: float | None = None
    error: str | None = None  # why it stopped early (its transform was removed, say)


def keeps_error(update: DeliveryUpdate) -> bool:
    """Whether storing `update` leaves the delivery's error as it is: one that neither made
    an attempt nor says anything (a delivery given back unsent keeps why it last failed)."""
    return update.attempt is None and update.error is None


def new_claim() -> int:
    """A claim's fencing token: random, so that no two claims, of any instance, share one."""
    return secrets.randbits(62) + 1


class ReplayMode(StrEnum):
    """How a bulk replay replays a delivery."""

    TRANSFORM = "transform"  # run the transform's current version on the stored event again
    ORIGINAL = "original"  # send the stored requests again, exactly as first made


@dataclass(frozen=True)
class BulkReplay:
    """A replay of every delivery a filtered list held when it started, run by the worker at
    a bounded pace, in id order from `cursor` (the last delivery id done) up to
    `last_delivery_id`; `filters` are `store.Filters.to_json()`.

    `done` counts the deliveries taken so far, `replayed` those it replayed (the others had
    been replayed already, with a sibling of the same event and transform, or could not be);
    it ends with `done_at` set: finished, stopped by an `error`, or `cancelled_at`.
    """

    id: int
    filters: Mapping[str, Any]
    mode: ReplayMode
    total: int
    last_delivery_id: int
    cursor: int
    done: int
    replayed: int
    created_at: float
    done_at: float | None = None
    cancelled_at: float | None = None
    error: str | None = None

    @property
    def state(self) -> str:
        if self.cancelled_at is not None:
            return "cancelled"
        if self.error is not None:
            return "stopped"
        return "running" if self.done_at is None else "done"


@dataclass(frozen=True)
class AuditEntry:
    """One change made through the console or the admin API: when, what, to what, by whom.

    Never event contents: `subject` and `detail` name ids, counts, versions and filters (a
    search's words withheld), and `actor` the console session (a short hash, never the cookie)
    or the API caller, and the client's address.
    """

    at: float
    # save, restore, replay, bulk replay, bulk replay cancelled, backfill, erasure, login ...
    action: str
    subject: str
    detail: str
    actor: str
    id: int = 0  # set by the store
