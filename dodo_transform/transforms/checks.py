"""`dodo-transform check`: every transform against every sample event, compared with golden files.

Golden files live at `<expected>/<transform>/<event type>.json` and hold
`Outcome.to_json()`. A missing golden file is reported as `new`, not as a
failure; `--update` writes them all.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from dodo_transform.errors import HandlerError, PayloadError
from dodo_transform.transforms.engine import Outcome
from dodo_transform.transforms.event import Event
from dodo_transform.transforms.registry import load_file


class Verdict(StrEnum):
    SAME = "ok"
    NEW = "new"
    CHANGED = "changed"
    UPDATED = "updated"
    BROKEN = "error"


@dataclass(frozen=True)
class Row:
    transform: str
    event: str
    outcome: str
    verdict: Verdict
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.verdict in (Verdict.CHANGED, Verdict.BROKEN)


def load_events(events_dir: Path) -> list[Event]:
    """Every `*.json` event in a folder; `PayloadError` naming the file that is unusable."""
    events = []
    for path in sorted(events_dir.glob("*.json")):
        try:
            events.append(Event.from_body(path.read_bytes(), webhook_id=f"msg_{path.stem}"))
        except PayloadError as error:
            raise PayloadError(f"{path}: {error}") from None
    return events


def golden_path(expected_dir: Path, transform: str, event_type: str) -> Path:
    return expected_dir / transform / f"{event_type}.json"


def check(
    transforms_dir: Path, events_dir: Path, expected_dir: Path, *, update: bool = False
) -> Iterator[Row]:
    """Run every transform on every event and compare (or, with `update`, rewrite) the goldens."""
    events = load_events(events_dir)
    for path in sorted(transforms_dir.glob("*.js")):
        try:
            transform = load_file(path)
        except HandlerError as error:
            yield Row(path.stem, "*", "error", Verdict.BROKEN, str(error))
            continue
        for event in events:
            outcome = transform.run(event)
            yield _compare(
                golden_path(expected_dir, path.stem, event.event_type),
                outcome,
                path.stem,
                event.event_type,
                update,
            )


def _compare(golden: Path, outcome: Outcome, transform: str, event_type: str, update: bool) -> Row:
    actual = outcome.to_json()
    row = Row(transform, event_type, outcome.kind.value, Verdict.SAME)
    if outcome.error:
        row = Row(transform, event_type, outcome.kind.value, Verdict.BROKEN, outcome.error)
    if update:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(dump(actual))
        return row if row.failed else Row(transform, event_type, row.outcome, Verdict.UPDATED)
    try:
        expected = json.loads(golden.read_text("utf-8"))
    except FileNotFoundError:
        return row if row.failed else Row(transform, event_type, row.outcome, Verdict.NEW)
    if expected != actual:
        return Row(
            transform, event_type, row.outcome, Verdict.CHANGED, _first_difference(expected, actual)
        )
    return row


def dump(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def _first_difference(expected: Any, actual: Any, path: str = "") -> str:
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in sorted(expected.keys() | actual.keys()):
            if expected.get(key) != actual.get(key):
                return _first_difference(expected.get(key), actual.get(key), f"{path}.{key}")
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        for index, (left, right) in enumerate(zip(expected, actual, strict=True)):
            if left != right:
                return _first_difference(left, right, f"{path}[{index}]")
    return (
        f"{path or 'outcome'}: expected {json.dumps(expected)[:80]}, got {json.dumps(actual)[:80]}"
    )
