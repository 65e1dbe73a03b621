"""Two enabled transforms that make the same Segment call on one event are named: by `check`,
on the rows of both, and in the pipeline's log whenever the transforms in service change."""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from dodo_transform.outgoing import OutgoingRequest
from dodo_transform.outgoing.destination import Allowlist
from dodo_transform.pipeline.duplicates import (
    CHECK_EVENTS_PER_ROUND,
    DuplicateCheck,
    example_events,
)
from dodo_transform.pipeline.transform_stage import run_in_this_process
from dodo_transform.service import build_service
from dodo_transform.settings import SEGMENT_REGIONS, load_settings
from dodo_transform.transforms import checks
from dodo_transform.transforms.engine import Outcome, OutcomeKind, Transform
from dodo_transform.transforms.event import Event
from dodo_transform.transforms.registry import Registry
from tests.conftest import EXAMPLES, SHIPPED, event_from, sample
from tests.test_cli import cli

CUSTOMER = sample("payment.succeeded")["data"]["customer"]["customer_id"]
CALL = f'track "Payment Completed" for userId {CUSTOMER}'
ADVICE = (
    "Segment would count it twice; remove or disable one, e.g. enabled = false in transforms.toml"
)


def folder_with_a_pasted_copy(tmp_path: Path, toml: str = "") -> Path:
    """The shipped transforms, and the docs' track snippet saved beside them as from_docs.js."""
    folder = tmp_path / "transforms"
    folder.mkdir()
    for path in SHIPPED.glob("*.js"):
        shutil.copy(path, folder)
    shutil.copy(SHIPPED / "segment_track_payments.js", folder / "from_docs.js")
    (folder / "transforms.toml").write_text(toml)
    return folder


def a_few_events(tmp_path: Path) -> Path:
    """Three example events (all 47 would only make the test slower)."""
    folder = tmp_path / "events"
    folder.mkdir()
    for kind in ("payment.succeeded", "payment.failed", "subscription.active"):
        shutil.copy(EXAMPLES / "events" / f"{kind}.json", folder)
    return folder


def check_warnings(folder: Path, tmp_path: Path) -> dict[tuple[str, str], tuple[str, ...]]:
    trier = checks.Trier(Allowlist(SEGMENT_REGIONS["us"]), {})
    rows = checks.check(folder, a_few_events(tmp_path), tmp_path / "expected", trier)
    return {(row.transform, row.event): row.warnings for row in rows if row.warnings}


def test_check_warns_once_per_pair_of_transforms_that_make_the_same_call(
    tmp_path: Path,
) -> None:
    warnings = check_warnings(folder_with_a_pasted_copy(tmp_path), tmp_path)
    assert warnings == {
        ("from_docs", "payment.succeeded"): (
            f"makes the same Segment call as segment_track_payments.js: {CALL} ({ADVICE})",
        ),
    }


@pytest.mark.parametrize(
    "toml",
    [
        "[from_docs]\nenabled = false\n",
        '[from_docs]\nevents = ["subscription.*"]\n',
        '[from_docs]\nwrite_key = "another_source"\n',
    ],
    ids=["disabled", "does not receive the type", "another Segment source"],
)
def test_check_does_not_warn_when_only_one_of_them_reaches_the_source(
    tmp_path: Path, toml: str
) -> None:
    assert check_warnings(folder_with_a_pasted_copy(tmp_path, toml), tmp_path) == {}


def test_the_cli_check_prints_one_line_per_pair(tmp_path: Path) -> None:
    folder = folder_with_a_pasted_copy(tmp_path)
    events = a_few_events(tmp_path)
    expected = tmp_path / "expected"
    result = cli(
        "check", "--transforms", folder, "--events", events, "--expected", expected,
        env={"COLUMNS": "400"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout
    warnings = [line for line in result.stdout.splitlines() if "makes the same" in line]
    warning = f"makes the same Segment call as segment_track_payments.js: {CALL} ({ADVICE})"
    assert len(warnings) == 1, result.stdout
    assert re.search(rf"warning: from_docs\b[^:]*: {re.escape(warning)}", warnings[0])


def request(url: str, payload: Any) -> OutgoingRequest:
    return OutgoingRequest("POST", url, {}, payload)


TRACK = "https://api.segment.io/v1/track"


@pytest.mark.parametrize(
    ("requests", "calls"),
    [
        ([request(TRACK, {"userId": "u", "event": "Paid"})], ['track "Paid" for userId u']),
        (
            [request(TRACK, {"anonymousId": "a", "event": "Paid"})],
            ['track "Paid" for anonymousId a'],
        ),
        (
            [
                request(
                    "https://api.segment.io/v1/batch",
                    {
                        "batch": [
                            {"type": "identify", "userId": "u", "traits": {}},
                            {"type": "page", "userId": "u", "name": "Pricing"},
                            {"type": "track", "event": "Paid"},  # no user: dropped
                        ]
                    },
                )
            ],
            ["identify for userId u", 'page "Pricing" for userId u'],
        ),
        ([request(TRACK, {"userId": "u"})], []),  # a track without event: dropped
        ([request("https://hooks.example.com/v1/track", {"userId": "u", "event": "P"})], []),
    ],
    ids=["track", "anonymous", "batch items", "dropped", "not segment"],
)
def test_segment_calls_are_the_calls_segment_would_take(
    requests: list[OutgoingRequest], calls: list[str]
) -> None:
    assert sorted(map(str, checks.segment_calls(requests))) == calls


def watch_over(folder: Path) -> tuple[Registry, DuplicateCheck]:
    registry = Registry(folder)
    registry.reload()
    return registry, DuplicateCheck(registry, run_in_this_process)


def test_the_pipeline_logs_each_duplicate_once_per_change(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = folder_with_a_pasted_copy(tmp_path)
    registry, duplicates = watch_over(folder)
    expected = (
        "transforms from_docs and segment_track_payments make the same Segment call on the "
        f"example payment.succeeded event: {CALL} ({ADVICE})"
    )
    with caplog.at_level(logging.WARNING, logger="dodo_transform.pipeline"):
        assert duplicates.check_if_changed() == [expected]
        assert duplicates.check_if_changed() == []  # nothing changed: nothing said again
        (folder / "transforms.toml").write_text("[from_docs]\nenabled = false\n")
        registry.reload()
        assert duplicates.check_if_changed() == []
        (folder / "transforms.toml").write_text("")
        registry.reload()
        assert duplicates.check_if_changed() == [expected]
    assert [record.getMessage() for record in caplog.records] == [expected, expected]
    assert {record.levelno for record in caplog.records} == {logging.WARNING}


def test_the_check_runs_a_round_at_a_time_and_a_limit_hitter_once(tmp_path: Path) -> None:
    """What handlers return is held a round at a time, as in the transform stage; a handler
    that hits its limit would cost the sandboxes its whole limit on every example."""
    folder = folder_with_a_pasted_copy(tmp_path)
    (folder / "poison.js").write_text("function handler(w) { while (true) {} }")
    registry = Registry(folder)
    registry.reload()
    calls: list[list[tuple[Transform, Event]]] = []

    def run_all(pairs: Sequence[tuple[Transform, Event]]) -> list[Outcome]:
        calls.append(list(pairs))
        return [
            Outcome(OutcomeKind.ERROR, error="time limit", hit_limit=True)
            if transform.name == "poison"
            else transform.run(event)
            for transform, event in pairs
        ]

    (warning,) = DuplicateCheck(registry, run_all).check_if_changed()
    assert "from_docs and segment_track_payments" in warning
    assert [t.name for pairs in calls for t, _ in pairs].count("poison") == 1
    rest = min(CHECK_EVENTS_PER_ROUND, len(example_events()) - 1)  # after the first event alone
    assert max(len({event for _, event in pairs}) for pairs in calls) == rest
    assert sum(len({event for _, event in pairs}) for pairs in calls) == len(example_events())


def test_a_real_event_waits_behind_one_round_of_the_check_never_all_of_it(
    tmp_path: Path,
) -> None:
    """The check runs at every start and after every change of the transforms, on the
    transform stage's thread: the stage's rounds for real events take turns with its rounds."""
    registry = Registry(folder_with_a_pasted_copy(tmp_path))
    registry.reload()
    transform_thread = ThreadPoolExecutor(1)  # as many as DODO_TRANSFORM_TRANSFORM_THREADS
    first_round, go_on = threading.Event(), threading.Event()
    ran: list[str] = []

    def run_all(pairs: Sequence[tuple[Transform, Event]]) -> list[Outcome]:
        ran.append("real" if pairs[0][1].webhook_id == "msg_real" else "check")
        if len(ran) == 1:  # the check's first round holds the thread a while
            first_round.set()
            go_on.wait(10)
        return [transform.run(event) for transform, event in pairs]

    async def scenario() -> None:
        watching = asyncio.create_task(DuplicateCheck(registry, run_all).watch(transform_thread))
        await asyncio.to_thread(first_round.wait, 10)
        real = [
            (registry.current()["from_docs"], event_from(sample("payment.succeeded"), "msg_real"))
        ]
        stage_round = asyncio.get_running_loop().run_in_executor(transform_thread, run_all, real)
        go_on.set()
        await stage_round
        watching.cancel()

    try:
        asyncio.run(scenario())
    finally:
        transform_thread.shutdown()
    assert ran[:3] == ["check", "real", "check"]


def test_the_example_events_are_found_for_the_pipeline() -> None:
    assert sorted(event.event_type for event in example_events()) == sorted(
        path.stem for path in (EXAMPLES / "events").glob("*.json")
    )


def test_the_worker_logs_the_duplicate_when_it_loads_the_transforms(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """As in the worker process: its service loads the folder, and its pipeline runs the
    handlers in the sandbox processes."""
    folder = folder_with_a_pasted_copy(tmp_path)
    (tmp_path / "data").mkdir()
    settings = load_settings(
        transforms=folder,
        data_dir=tmp_path / "data",
        webhook_secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    )
    service = build_service(settings, in_worker=True)

    async def run() -> None:
        await service.start()
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not duplicates_logged():
                await asyncio.sleep(0.05)
        finally:
            await service.stop()

    def duplicates_logged() -> list[str]:
        return [r.getMessage() for r in caplog.records if "same Segment call" in r.getMessage()]

    with caplog.at_level(logging.WARNING, logger="dodo_transform.pipeline"):
        asyncio.run(run())
    (message,) = duplicates_logged()
    assert message.startswith("transforms from_docs and segment_track_payments make the same")
