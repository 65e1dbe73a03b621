"""Version history: every version of a transform this pipeline has had in service, kept in the
store (source, settings and hash) for the console to list, compare and restore. A change of
its table in transforms.toml alone is a new version too.

The pipeline's process records them (once per service: the process that runs transforms), as
the registry loads them: at start and after every reload, whether the file changed by a save
from the console or an edit in the folder. The store keeps each (name, version) once, so a
restart, another instance or a version restored from the history adds nothing.
"""

from __future__ import annotations

from dodo_transform.store import Reads, TransformVersion
from dodo_transform.transforms.registry import Registry

# How often the registry's versions are compared with those already recorded (in memory).
CHECK_SECONDS = 1.0


class VersionRecorder:
    """Records the registry's versions that this process has not recorded yet."""

    def __init__(self, store: Reads, registry: Registry) -> None:
        self.store = store
        self.registry = registry
        self._recorded: set[tuple[str, str]] = set()

    def record_new(self) -> int:
        """Record what is new in service since the last call; how many the store had not seen.
        A `StorageError` leaves them unrecorded here, to try again next time."""
        new = [
            transform
            for transform in self.registry.current().values()
            if (transform.name, transform.version) not in self._recorded
            # Its settings as the registry holds them now (a reload between the two reads is
            # caught up with next time).
            and self.registry.settings(transform.name).digest() == transform.settings_digest
        ]
        if not new:
            return 0
        added = self.store.record_versions(
            [
                TransformVersion(
                    t.name, t.version, t.source, settings=self.registry.settings(t.name).shown()
                )
                for t in new
            ]
        )
        self._recorded.update((t.name, t.version) for t in new)
        return added
