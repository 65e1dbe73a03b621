"""Durable storage: received events, what each transform made of them, every attempt.

The face of this package: the `Store` protocol, `open_store(settings)` (the one
place a backend is chosen), and the records every store takes and returns.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from dodo_transform.errors import ConfigError
from dodo_transform.store.base import (
    DeliveryWork,
    EventWork,
    Heartbeats,
    IntakeStore,
    LeaseWork,
    Reads,
    Requests,
    Sessions,
    Store,
)
from dodo_transform.store.heartbeats import Heartbeat
from dodo_transform.store.records import (
    FINAL_STATUSES,
    REPLAYABLE_STATUSES,
    Attempt,
    AuditEntry,
    Backfill,
    BulkReplay,
    Delivery,
    DeliveryKey,
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
from dodo_transform.store.search import Filters, SearchError

if TYPE_CHECKING:
    from dodo_transform.settings import Settings

__all__ = [
    "FINAL_STATUSES",
    "REPLAYABLE_STATUSES",
    "Attempt",
    "AuditEntry",
    "Backfill",
    "BulkReplay",
    "Delivery",
    "DeliveryKey",
    "DeliveryStatus",
    "DeliveryUpdate",
    "DeliveryWork",
    "EventWork",
    "Filters",
    "HandOff",
    "Heartbeat",
    "Heartbeats",
    "IntakeStore",
    "Lane",
    "LeaseWork",
    "NewDelivery",
    "NewEvent",
    "Reads",
    "Recorded",
    "ReplayMode",
    "ReplayRequest",
    "Requests",
    "SearchError",
    "Sessions",
    "Store",
    "StoredEvent",
    "TransformVersion",
    "instance_id",
    "is_postgres",
    "open_store",
]


def open_store(
    settings: Settings,
    *,
    clock: Callable[[], float] | None = None,
    durable: bool = True,
    claims_work: bool = True,
) -> Store:
    """The store the settings name: a database URL's scheme picks the backend.

    No URL means SQLite in the data dir; `postgresql://` (or `postgres://`) means
    PostgreSQL, shared by several instances. `durable` and `claims_work` are the
    process's role (see `SqliteStore` and `PostgresStore`).
    """
    url = settings.database_url
    now = time.time if clock is None else clock
    if url is None or url.startswith("sqlite:"):
        from dodo_transform.store.sqlite import SqliteStore

        path = settings.database if url is None else settings.sqlite_path
        return SqliteStore(path, now, durable=durable, claims_work=claims_work)
    if is_postgres(url):
        from dodo_transform.store.postgres import PostgresStore

        owner = instance_id(settings)
        return PostgresStore(url, owner=owner, clock=now, durable=durable, claims_work=claims_work)
    scheme = url.split(":", 1)[0]
    raise ConfigError(
        f"DODO_TRANSFORM_DATABASE_URL: no store for {scheme!r} URLs; leave it unset for SQLite "
        "in the data dir, or use sqlite:///path/to/file.db or postgresql://user@host/database"
    )


def is_postgres(url: str | None) -> bool:
    """Whether a database URL names PostgreSQL (shared by several instances)."""
    return url is not None and url.split(":", 1)[0] in ("postgresql", "postgres")


def instance_id(settings: Settings) -> str:
    """This instance's name in the leases it holds: its host and data dir.

    The same after a restart (so it takes back its own leases at once) and different for
    every instance, which each have their own data dir.
    """
    return f"{socket.gethostname()}:{settings.data_dir.resolve()}"
