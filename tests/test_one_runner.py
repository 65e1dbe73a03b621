"""One runner everywhere: `test`, `test --event-id`, `check`, the console's test panel and its
impact preview run handlers in sandbox processes with the service's backstop, so a handler stuck
in one long built-in call (which QuickJS's interrupt never sees) ends at its limit with the
service's error, wherever it runs.

The CLI is run as a user runs it (a process of its own). The limit, and the backstop behind it,
count CPU time (the machine may be shared), and the CLI's own start-up and its sandbox process's
are not the handler's: the bound (1.5 x the limit + 2 s) is checked on the CPU time the command
and its sandbox process used beyond the same command on a handler that returns at once. The 2 s
are for the start-up's own cost, which grows when another process shares the cores (seen: a
check's start-up 1 s dearer in a busy CI run than in its baseline run); a call without the
backstop runs for minutes. Its wall time must stay far from those minutes too.
"""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from dodo_transform.limits import Limits
from dodo_transform.outgoing.destination import Allowlist
from dodo_transform.settings import SEGMENT_REGIONS, load_settings
from dodo_transform.testing import SECRET, SegmentStandIn, Server, in_process, server_env
from dodo_transform.transforms import checks
from tests.conftest import EXAMPLES, SHIPPED, sample
from tests.test_console import Console

LIMIT = 0.5
BOUND = 1.5 * LIMIT + 2
NOT_MINUTES = 30.0
STUCK = "function handler(webhook) {\n  Array.prototype.join.call({length: 2 ** 32}, '');\n}\n"
QUICK = "function handler(webhook) {\n  return webhook;\n}\n"
STUCK_ERROR = f"time limit of {LIMIT:g} s exceeded inside a built-in call"
# Wide enough that check's table keeps an error on one line.
ENV = {"DODO_TRANSFORM_HANDLER_TIME_LIMIT": str(LIMIT), "COLUMNS": "300"}


def cli(*args: str | Path, cwd: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    """The command's result and the CPU seconds it and its sandbox process used (a process's
    children count once it has waited for them, as the CLI does for its sandbox process)."""
    before = _children_cpu()
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "dodo_transform", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        env=os.environ | ENV,
    )
    assert time.monotonic() - started < NOT_MINUTES
    return done, _children_cpu() - before


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def handlers(tmp_path: Path) -> tuple[Path, Path]:
    """A folder with the stuck handler and one with the quick one."""
    paths = []
    for name, source in (("stuck", STUCK), ("quick", QUICK)):
        folder = tmp_path / name
        folder.mkdir()
        (folder / f"{name}.js").write_text(source)
        paths.append(folder / f"{name}.js")
    return paths[0], paths[1]


def test_test_ends_a_stuck_built_in_call_at_the_limit_with_exit_1(tmp_path: Path) -> None:
    stuck, quick = handlers(tmp_path)
    event = EXAMPLES / "events" / "payment.succeeded.json"
    baseline, base_time = cli("test", quick, event, cwd=tmp_path)
    assert baseline.returncode == 0, baseline.stdout + baseline.stderr
    done, took = cli("test", stuck, event, cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{stuck}: {STUCK_ERROR}" in done.stdout and done.stderr == ""
    assert took - base_time < BOUND, (took, base_time)


def test_check_ends_a_stuck_built_in_call_at_the_limit_with_exit_1(tmp_path: Path) -> None:
    stuck, quick = handlers(tmp_path)
    events = tmp_path / "events"
    events.mkdir()
    shutil.copy(EXAMPLES / "events" / "payment.succeeded.json", events)
    expected = tmp_path / "expected"
    baseline, base_time = cli(
        "check", "--transforms", quick.parent, "--events", events, "--expected", expected,
        cwd=tmp_path,
    )  # fmt: skip
    assert baseline.returncode == 0, baseline.stdout + baseline.stderr
    done, took = cli(
        "check", "--transforms", stuck.parent, "--events", events, "--expected", expected,
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert STUCK_ERROR in done.stdout and done.stderr == ""
    assert "1 runs: 0 ok, 1 error" in done.stdout
    assert took - base_time < BOUND, (took, base_time)


def test_test_of_a_stored_event_ends_a_stuck_built_in_call_at_the_limit(tmp_path: Path) -> None:
    stuck, quick = handlers(tmp_path)
    workdir = tmp_path / "service"
    shutil.copytree(SHIPPED, workdir / "transforms")
    with SegmentStandIn().running() as standin:
        server = Server(workdir, server_env(standin)).start()
        try:
            server.post(sample("payment.succeeded"), webhook_id="msg_stored")
            stored = server.api("GET", "/api/events").json()[0]["id"]
            at = ("--server", server.url, "--event-id", str(stored))
            baseline, base_time = cli("test", quick, *at, cwd=tmp_path)
            done, took = cli("test", stuck, *at, cwd=tmp_path)
        finally:
            server.stop()
    assert baseline.returncode == 0, baseline.stdout + baseline.stderr
    assert done.returncode == 1, done.stdout + done.stderr
    assert STUCK_ERROR in done.stdout
    assert took - base_time < BOUND, (took, base_time)


def test_the_consoles_test_panel_and_impact_preview_stop_a_stuck_built_in_call(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "transforms"
    shutil.copytree(SHIPPED, folder)
    config = load_settings(
        transforms=folder,
        data_dir=tmp_path / "data",
        webhook_secret=SECRET,
        worker_process=False,
        handler_time_limit=LIMIT,
    )
    name = "segment_track_payments"

    async def main() -> None:
        segment = httpx.MockTransport(lambda request: httpx.Response(200))
        async with in_process(config, transport=segment) as (service, client):
            console = Console(service, client, folder)
            await console.send_webhook("msg_one")
            await console.until(lambda: console.deliveries("dry_run"))
            started = time.monotonic()
            tried = await console.post(
                f"/transforms/{name}/test", {"source": STUCK, "sample": "example:payment.succeeded"}
            )
            assert 'data-testid="outcome">error<' in tried.text, tried.text
            assert STUCK_ERROR in tried.text
            assert time.monotonic() - started < NOT_MINUTES
            previewed = await console.post(f"/transforms/{name}/impact", {"source": STUCK})
            assert 'data-testid="impact-failing">1<' in previewed.text, previewed.text
            assert "exceeded inside a built-in call" in previewed.text

    asyncio.run(main())


def test_check_stops_running_a_handler_that_keeps_hitting_its_limit(tmp_path: Path) -> None:
    """As the service quarantines it: after 3 events in a row, the rest are not run (each would
    cost its whole limit), and the rows say so rather than speaking of a quarantine."""
    folder = tmp_path / "transforms"
    folder.mkdir()
    (folder / "loops.js").write_text("function handler(webhook) { while (true) {} }\n")
    events = tmp_path / "events"
    events.mkdir()
    for kind in ("payment.succeeded", "payment.failed", "refund.succeeded", "dispute.opened"):
        shutil.copy(EXAMPLES / "events" / f"{kind}.json", events)
    trier = checks.Trier(Allowlist(SEGMENT_REGIONS["us"]), {}, limits=Limits(time_seconds=0.2))
    rows = list(checks.check(folder, events, tmp_path / "expected", trier))
    details = [row.detail for row in rows]
    assert all("time limit of 0.2 s exceeded" in detail for detail in details[:3]), details
    assert details[3] == (
        "not run: the handler hit its resource limit on 3 events in a row (the service would "
        "quarantine this version until the file changes)"
    )
