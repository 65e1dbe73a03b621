"""The instances of one service, and whether they run the same transforms.

Every instance's HTTP process (whatever its role: a worker-only instance has one too) beats into
the store every `HEARTBEAT_SECONDS`: its host, role, release, and the version of each transform
it has loaded from its own transforms folder. `status`, `/api/status` and the console list the
instances seen within `LIVE_SECONDS`, and name each transform whose version differs between
them. With instances on several hosts, each folder is its own copy and a console save lands on
one host's only: the copies are the user's to keep alike (a deploy, a shared folder), and a
difference is what this makes visible at once. The instance that stops leaves the list at once;
one that dies leaves it after `LIVE_SECONDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from dodo_transform import __version__
from dodo_transform.errors import StorageError
from dodo_transform.settings import Settings
from dodo_transform.store import Heartbeat, Heartbeats, instance_id
from dodo_transform.transforms.registry import Registry

HEARTBEAT_SECONDS = 5.0
LIVE_SECONDS = 3 * HEARTBEAT_SECONDS  # two beats may be late before an instance is gone
NOT_LOADED = "none"  # how a difference names a transform an instance has not loaded


def describe(settings: Settings, registry: Registry, started_at: float) -> Heartbeat:
    """This instance as its heartbeat says it."""
    return Heartbeat(
        instance=instance_id(settings),
        host=socket.gethostname(),
        role=settings.role,
        release=__version__,
        transforms={name: t.version for name, t in registry.current().items()},
        started_at=started_at,
    )


async def beat(store: Heartbeats, heartbeat: Callable[[], Heartbeat]) -> None:
    """One heartbeat. A store that is away fails the beat, not its caller: readiness says so,
    and the next beat tries again."""
    with contextlib.suppress(StorageError):
        await asyncio.to_thread(store.beat, heartbeat())


async def beating(
    store: Heartbeats,
    heartbeat: Callable[[], Heartbeat],
    stop: asyncio.Event,
    every: float = HEARTBEAT_SECONDS,
) -> None:
    """A heartbeat every `every` seconds until `stop` is set (the first is the caller's, at
    start, so that an instance is listed as soon as it serves)."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
        if not stop.is_set():
            await beat(store, heartbeat)


def leave(store: Heartbeats, instance: str) -> None:
    """Take a stopping instance off the list (blocking)."""
    with contextlib.suppress(StorageError):
        store.forget_instance(instance)


@dataclass(frozen=True)
class Difference:
    """A transform the live instances do not all run at one version: each version (or
    `NOT_LOADED`) with the instances running it."""

    transform: str
    versions: dict[str, list[str]]

    def __str__(self) -> str:
        held = "; ".join(
            f"{version} on {', '.join(instances)}" for version, instances in self.versions.items()
        )
        return f"transform {self.transform} differs between instances: {held}"


def differences(beats: Sequence[Heartbeat]) -> list[Difference]:
    """Each transform whose version is not the same on every live instance."""
    names = sorted({name for beat in beats for name in beat.transforms})
    found = []
    for name in names:
        versions: dict[str, list[str]] = {}
        for beat in beats:
            versions.setdefault(beat.transforms.get(name, NOT_LOADED), []).append(beat.instance)
        if len(versions) > 1:
            found.append(Difference(name, dict(sorted(versions.items()))))
    return found
