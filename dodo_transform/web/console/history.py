"""A transform's version history as the console shows it: the versions the service has run
(kept in the store by the pipeline's process), which one is in service and which one the file
holds, a diff between any two, and the source of one to restore. Restoring writes the file
exactly as a save does: the file is the source of truth.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass

from dodo_transform.store import Store, TransformVersion
from dodo_transform.transforms.engine import Transform
from dodo_transform.web.console.trials import DiffLine

MAX_VERSION_CHARS = 64


class UnknownVersion(LookupError):
    """The store keeps no such version of this transform."""


@dataclass(frozen=True)
class Listed:
    """One kept version, as the history lists it."""

    kept: TransformVersion
    in_service: bool
    in_file: bool  # its source is the file's text, exactly


@dataclass(frozen=True)
class Listing:
    """The kept versions, newest first, and what the file holds when it is none of them."""

    versions: list[Listed]
    file_note: str | None = None
    file_broken: bool = False  # the file's text does not load


def listing(
    versions: list[TransformVersion],
    file_text: str,
    in_service: Transform | None,
    load_error: str | None,
) -> Listing:
    """Mark the version in service, and as the file only the one whose source is its text.

    After a save that does not load, the file holds a text that never ran: no version is
    the file's, and `file_note` says why."""
    serving = in_service.version if in_service else None
    # Versions that differ in settings only share a source: the file is the newest of them.
    first = next((v.version for v in versions if v.source == file_text), None)
    listed = [Listed(v, v.version == serving, v.version == first) for v in versions]
    if any(item.in_file for item in listed):
        return Listing(listed)
    if in_service is not None and in_service.source == file_text:
        return Listing(listed, f"version {serving}, in service, not in the history yet")
    if load_error:
        return Listing(listed, f"does not load: {load_error}", file_broken=True)
    return Listing(listed, "changed since it was loaded, not in service yet")


@dataclass(frozen=True)
class Compared:
    """Two versions of one transform and the unified diff from the first to the second."""

    older: TransformVersion
    newer: TransformVersion
    lines: list[DiffLine]


def find(store: Store, name: str, version: str) -> TransformVersion:
    found = store.get_version(name, version) if len(version) <= MAX_VERSION_CHARS else None
    if found is None:
        raise UnknownVersion(f"no version {version!r} of transform {name!r} is kept")
    return found


def compare(store: Store, name: str, first: str, second: str) -> Compared:
    """The diff from version `first` to version `second` of transform `name`."""
    older, newer = find(store, name, first), find(store, name, second)
    return Compared(older, newer, source_diff(older, newer))


def source_diff(older: TransformVersion, newer: TransformVersion) -> list[DiffLine]:
    """The diff of the two sources, and of their settings below when either has any."""
    lines = difflib.unified_diff(
        _with_settings(older),
        _with_settings(newer),
        fromfile=f"{older.name}.js @ {older.version}",
        tofile=f"{newer.name}.js @ {newer.version}",
        lineterm="",
    )
    shown = []
    for index, line in enumerate(lines):
        kind = "hunk" if index < 2 else {"+": "add", "-": "remove", "@": "hunk"}.get(line[:1])
        shown.append(DiffLine(kind or "same", line))
    return shown


def _with_settings(version: TransformVersion) -> list[str]:
    lines = version.source.splitlines()
    if version.settings:
        lines += ["", f"// [{version.name}] in transforms.toml:"]
        lines += json.dumps(version.settings, indent=2, sort_keys=True).splitlines()
    return lines
