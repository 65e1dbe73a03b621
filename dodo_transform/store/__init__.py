"""Durable storage: received events, what each transform made of them, every attempt.

The face of this package: the `Store` protocol, `open_store(settings)` (the one
place a backend is chosen), and the records every store takes and returns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from dodo_transform.errors import ConfigError
from dodo_transform.store.base import Store
from dodo_transform.store.records import (
    FINAL_STATUSES,
    REPLAYABLE_STATUSES,
    Attempt,
    Delivery,
    DeliveryStatus,
    DeliveryUpdate,
    NewDelivery,
    NewEvent,
    ReplayRequest,
    StoredEvent,
)

if TYPE_CHECKING:
    from dodo_transform.settings import Settings

__all__ = [
    "FINAL_STATUSES",
    "REPLAYABLE_STATUSES",
    "Attempt",
    "Delivery",
    "DeliveryStatus",
    "DeliveryUpdate",
    "NewDelivery",
    "NewEvent",
    "ReplayRequest",
    "Store",
    "StoredEvent",
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

    No URL means SQLite in the data dir. `durable` and `claims_work` are the
    process's role (see `SqliteStore`).
    """
    url = settings.database_url
    if url is None or url.startswith("sqlite:"):
        from dodo_transform.store.sqlite import SqliteStore

        path = settings.database if url is None else settings.sqlite_path
        extra = {} if clock is None else {"clock": clock}
        return SqliteStore(path, durable=durable, claims_work=claims_work, **extra)
    scheme = url.split(":", 1)[0]
    raise ConfigError(
        f"DODO_TRANSFORM_DATABASE_URL: no store for {scheme!r} URLs; "
        "leave it unset for SQLite in the data dir, or use sqlite:///path/to/file.db"
    )
