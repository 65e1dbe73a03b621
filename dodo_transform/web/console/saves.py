"""How a save (or a restore) from the console ended, said at once and again on the page a
post/redirect/get shows after it; and the new version put in the history at once."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from dodo_transform.errors import StorageError
from dodo_transform.store import TransformVersion
from dodo_transform.transforms.engine import version_of
from dodo_transform.web.context import WebContext

NOT_SAVED = "not saved: "  # how an error that left the file as it was begins


@dataclass(frozen=True)
class Saved:
    """How a save ended: `live` with the new version, or the compile error and the version
    still in service (None if there was never a good one)."""

    live: bool
    version: str | None
    error: str | None = None

    @property
    def written(self) -> bool:
        """Whether the file was written (live, or saved but not compiling)."""
        return self.error is None or not self.error.startswith(NOT_SAVED)


def outcome(context: WebContext, name: str, source: str) -> Saved:
    """How saving `source` as transform `name` ended, once the registry has reloaded."""
    registry = context.registry
    current = registry.current().get(name)
    error = registry.errors.get(name)
    expected = version_of(source, registry.settings(name).digest())
    if error is None and current is not None and current.version == expected:
        return Saved(live=True, version=current.version)
    return Saved(
        live=False,
        version=current.version if current else None,
        error=error or "the file changed again while it was saved; reload the page",
    )


def keep(context: WebContext, name: str, saved: Saved) -> None:
    """Put the version in service in the history now. The pipeline's process records it too,
    but only once its own watcher has reloaded (a second or more later): the page shown
    after a save would list it late. The store keeps each version once."""
    current = context.registry.current().get(name)
    if not saved.live or current is None:
        return
    settings = context.registry.settings(name).shown()
    # Should the store be away, the pipeline's process records it once it is back.
    with contextlib.suppress(StorageError):
        context.store.record_versions(
            [TransformVersion(name, current.version, current.source, settings=settings)]
        )
