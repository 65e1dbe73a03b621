"""Duplicate Segment calls: two enabled transforms that send Segment the same call for one
event, so that Segment counts it twice (a docs snippet saved beside the shipped transform
that makes the same "Payment Completed" track).

Nothing in a delivery shows it: each of the two is right on its own. So whenever the
transforms in service change (a file, `enabled` or `events`), the pipeline runs them over the
example events, in the sandboxes that run real events, and logs a warning per pair of
transforms that make a call in common. The comparison is `checks.duplicate_calls`, which
`dodo-transform check` shows too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import CancelledError, Executor
from typing import Any

from dodo_transform.errors import PayloadError
from dodo_transform.pipeline.transform_stage import RunAll
from dodo_transform.pipeline.versions import CHECK_SECONDS
from dodo_transform.transforms import checks
from dodo_transform.transforms.engine import Outcome, Transform
from dodo_transform.transforms.event import Event
from dodo_transform.transforms.registry import Registry
from dodo_transform.transforms.sandbox_processes import PoolClosed

log = logging.getLogger("dodo_transform.pipeline")
# Example events per job on the transform stage's executor. Small, unlike the stage's own
# rounds: a real event waits behind one job of the check, and a slow handler (a fan-out of
# thousands of requests runs for ~60 ms an event) must not make that job seconds long.
CHECK_EVENTS_PER_ROUND = 4


def example_events() -> list[Event]:
    """The example events (one per Dodo event type); none when this install has no copy."""
    folder = checks.examples_folder()
    return checks.load_events(folder) if folder is not None else []


class DuplicateCheck:
    """Logs the duplicate Segment calls of the transforms in service, once per change."""

    def __init__(
        self,
        registry: Registry,
        run_all: RunAll,
        examples: Callable[[], Sequence[Event]] = example_events,
    ) -> None:
        self.registry = registry
        self._run_all = run_all
        self._examples = examples
        self._events: Sequence[Event] | None = None  # read on first use
        self._checked: list[tuple[Any, ...]] | None = None  # what was in service then

    async def watch(self, executor: Executor) -> None:
        """Check every `CHECK_SECONDS` until cancelled, each round of example events a job of
        its own on `executor`, the transform stage's: the stage's rounds for real events queue
        there too, so a real event waits behind one round of the check at most, never all of it
        (the check runs at every start and after every change of the transforms)."""

        def in_turn(pairs: Sequence[tuple[Transform, Event]]) -> list[Outcome]:
            try:
                job = executor.submit(self._run_all, pairs)
            except RuntimeError as stopped:  # the executor was shut down: stopping
                raise PoolClosed("the pipeline is stopping") from stopped
            try:
                return job.result()
            except CancelledError as stopped:  # a job still queued when it shut down
                raise PoolClosed("the pipeline is stopping") from stopped

        while True:
            await asyncio.to_thread(self.check_if_changed, in_turn)
            await asyncio.sleep(CHECK_SECONDS)

    def check_if_changed(self, run_round: RunAll | None = None) -> list[str]:
        """The warnings logged, when the enabled transforms or their settings changed since
        the last call; none otherwise (blocking: runs handlers, each round of example events
        through `run_round`, by default the `run_all` given)."""
        in_service = self._in_service()
        if in_service == self._checked:
            return []
        try:
            warnings = self._warnings(run_round or self._run_all)
        except PoolClosed:
            return []  # stopping: the next start checks again
        except (PayloadError, OSError) as error:
            warnings = []
            log.warning("could not check for duplicate Segment calls: %s", error)
        except Exception:
            # A bug here must not end the watch (nor say so every second).
            warnings = []
            log.exception("the check for duplicate Segment calls failed")
        self._checked = in_service  # what failed is not tried again until something changes
        for warning in warnings:
            log.warning(warning)
        return warnings

    def _in_service(self) -> list[tuple[Any, ...]]:
        """What the check depends on: each enabled transform's code and destination settings
        (a `Transform` compares by its source, file, url, env and limits)."""
        found = []
        for name, transform in sorted(self.registry.current().items()):
            settings = self.registry.settings(name)
            if settings.enabled:
                found.append((transform, settings.events, settings.write_key))
        return found

    def _warnings(self, run_round: RunAll) -> list[str]:
        """One warning per pair of transforms with a call in common, naming the first example
        event they share it on."""
        found: dict[tuple[str, str], list[tuple[Event, checks.Duplicate]]] = {}
        for event, by_transform in self._calls(run_round).items():
            for duplicate in checks.duplicate_calls(by_transform):
                found.setdefault((duplicate.first, duplicate.second), []).append((event, duplicate))
        return [_warning(first, second, seen) for (first, second), seen in found.items()]

    def _calls(self, run_round: RunAll) -> dict[Event, dict[str, frozenset[checks.SegmentCall]]]:
        """The Segment calls of each enabled transform on each example event it receives.

        A round of events at a time, as the transform stage runs them, for what handlers
        return is held until the round ends (a poison's 4 MB payload, times 47 events, would
        not be). A transform that hits a limit is not run again: the stage quarantines it, and
        each run would cost its whole limit in the sandboxes that real events wait for. The
        first round is one event, so that such a transform costs one run.
        """
        if self._events is None:
            self._events = list(self._examples())
        current = self.registry.current()
        settings = {name: self.registry.settings(name) for name in sorted(current)}
        enabled = [name for name, table in settings.items() if table.enabled]
        calls: dict[Event, dict[str, frozenset[checks.SegmentCall]]] = {}
        hit_limit: set[str] = set()
        for round_ in _rounds(self._events):
            pairs = [
                (current[name], event)
                for event in round_
                for name in enabled
                if name not in hit_limit and settings[name].receives(event.event_type)
            ]
            for (transform, event), outcome in zip(pairs, run_round(pairs), strict=True):
                if outcome.hit_limit:
                    hit_limit.add(transform.name)
                made = checks.segment_calls(outcome.requests, settings[transform.name].write_key)
                calls.setdefault(event, {})[transform.name] = made
        return calls


def _rounds(events: Sequence[Event]) -> Iterator[Sequence[Event]]:
    """The first event alone, then `CHECK_EVENTS_PER_ROUND` at a time."""
    yield events[:1]
    for start in range(1, len(events), CHECK_EVENTS_PER_ROUND):
        yield events[start : start + CHECK_EVENTS_PER_ROUND]


def _warning(first: str, second: str, seen: list[tuple[Event, checks.Duplicate]]) -> str:
    event, duplicate = seen[0]
    others = sorted({other.event_type for other, _ in seen[1:]} - {event.event_type})
    more = f"; on {len(others)} more example events too ({', '.join(others)})" if others else ""
    return (
        f"transforms {first} and {second} make the same Segment call on the example "
        f"{event.event_type} event: {duplicate.call} ({duplicate.call.effect}; remove or "
        f"disable one, e.g. enabled = false in transforms.toml){more}"
    )
