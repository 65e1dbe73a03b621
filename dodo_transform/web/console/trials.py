"""Test runs from the editor: the unsaved source, on one sample event, in a sandbox process.

The run goes through `WebContext.run_trials`, a sandbox process of its own with
the service's limits (see `transforms/sandbox_processes.py`): a handler that
loops, eats memory or hangs inside a built-in costs that child process, never
the HTTP process. What comes back is shaped here for the result panel.
"""

from __future__ import annotations

import difflib
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dodo_transform.transforms.engine import Outcome
from dodo_transform.transforms.event import Event
from dodo_transform.transforms.registry import Registry
from dodo_transform.transforms.sandbox_processes import Run, TransformSpec
from dodo_transform.web.context import WebContext

_POSITION = re.compile(r"\.js:(\d+):(\d+)")
# Every trial gets a version of its own, so each compiles afresh from the text sent.
_trial_numbers = itertools.count(1)


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "add", "remove", "same" or "hunk"
    text: str


@dataclass(frozen=True)
class ShownRequest:
    method: str
    url: str
    headers: dict[str, str]
    payload: str
    diff: list[DiffLine]


@dataclass(frozen=True)
class Trial:
    """One test run, ready to show."""

    outcome: Outcome
    duration_ms: float
    requests: list[ShownRequest] = field(default_factory=list)
    error_at: tuple[int, int] | None = None

    @property
    def word(self) -> str:
        return self.outcome.kind.value


def spec_for(registry: Registry, name: str, source: str) -> TransformSpec:
    """The transform as it would be if `source` were saved: its settings, limits and file."""
    settings = registry.settings(name)
    return TransformSpec(
        name=name,
        version=f"trial-{next(_trial_numbers)}",
        source=source,
        filename=str(Path(registry.directory) / f"{name}.js"),
        default_url=settings.target_url,
        env=dict(settings.env_values()),
        limits=registry.limits,
        max_requests=settings.max_requests,
    )


def run(context: WebContext, name: str, source: str, event: Event) -> Trial:
    """Run `source` as transform `name` on `event` (blocking: call it in a thread)."""
    assert context.run_trials is not None
    spec = spec_for(context.registry, name, source)
    started = time.perf_counter()
    (outcome,) = context.run_trials([Run(spec, event)])
    duration_ms = (time.perf_counter() - started) * 1000
    return shape(outcome, event, duration_ms)


def shape(outcome: Outcome, event: Event, duration_ms: float) -> Trial:
    before = pretty(_parsed(event.body))
    shown = []
    for request in outcome.requests:
        visible = request.redacted()
        after = pretty(visible["payload"])
        shown.append(
            ShownRequest(
                visible["method"], visible["url"], visible["headers"], after, diff(before, after)
            )
        )
    return Trial(outcome, duration_ms, shown, error_position(outcome.error))


def error_position(error: str | None) -> tuple[int, int] | None:
    """The line and column an error names in the transform's file, if it names one."""
    found = _POSITION.search(error or "")
    return (int(found.group(1)), int(found.group(2))) if found else None


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def diff(before: str, after: str) -> list[DiffLine]:
    """The webhook payload before the handler and a request's payload after, line by line."""
    lines = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=2)
    shown = []
    for line in itertools.islice(lines, 2, None):  # the ---/+++ header names no file here
        kind = {"+": "add", "-": "remove", "@": "hunk"}.get(line[:1], "same")
        shown.append(DiffLine(kind, line))
    return shown


def _parsed(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body
