"""Heartbeats: each instance of the service says, every few seconds, that it is alive, on which
host, in which role, with which release, and which version of every transform it runs.

`status` lists the instances seen lately and compares their transform versions (see
`dodo_transform.instances`). Both SQL stores inherit `SqlHeartbeats` beside `SqlReads`, and give
`_query` and `_write` (see `sessions.py`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dodo_transform.store.sessions import Statement

_BEAT = """
    INSERT INTO heartbeats (instance, host, role, release, transforms, started_at, seen_at)
    VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (instance) DO UPDATE SET host = excluded.host, role = excluded.role,
        release = excluded.release, transforms = excluded.transforms,
        started_at = excluded.started_at, seen_at = excluded.seen_at
"""
_COLUMNS = "instance, host, role, release, transforms, started_at, seen_at"


@dataclass(frozen=True)
class Heartbeat:
    """One instance as it last said: `transforms` maps each loaded transform to its version."""

    instance: str  # host and data dir, as its leases name it (`store.instance_id`)
    host: str
    role: str
    release: str  # the dodo-transform version it runs
    transforms: Mapping[str, str] = field(default_factory=dict)
    started_at: float = 0.0
    seen_at: float = 0.0


class SqlHeartbeats:
    placeholder = "?"
    _clock: Callable[[], float]

    def _query(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    def _write(self, statements: Sequence[Statement]) -> list[Any]:
        raise NotImplementedError

    def _sql_of(self, query: str) -> str:
        return query.replace("?", self.placeholder)

    def beat(self, heartbeat: Heartbeat) -> None:
        """Record that `heartbeat.instance` is alive now, as `heartbeat` describes it."""
        values = (
            heartbeat.instance,
            heartbeat.host,
            heartbeat.role,
            heartbeat.release,
            json.dumps(dict(sorted(heartbeat.transforms.items()))),
            heartbeat.started_at,
            self._clock(),
        )
        self._write([(self._sql_of(_BEAT), values)])

    def heartbeats(self, within_seconds: float) -> list[Heartbeat]:
        """The instances that beat within the last `within_seconds`, by host and instance."""
        rows = self._query(  # written with `?`: `_query` puts this database's placeholders
            f"SELECT {_COLUMNS} FROM heartbeats WHERE seen_at > ? ORDER BY host, instance",
            (self._clock() - within_seconds,),
        )
        return [
            Heartbeat(row[0], row[1], row[2], row[3], json.loads(row[4]), row[5], row[6])
            for row in rows
        ]

    def forget_instance(self, instance: str) -> None:
        """An instance that stops says so: it leaves the list at once."""
        self._write([(self._sql_of("DELETE FROM heartbeats WHERE instance = ?"), (instance,))])
