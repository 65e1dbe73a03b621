"""Sandbox processes: the backstop that stops what the interrupt cannot, at a bounded cost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dodo_transform.limits import Limits
from dodo_transform.search_terms import event_terms
from dodo_transform.transforms.engine import OutcomeKind, Transform
from dodo_transform.transforms.sandbox_processes import (
    PoolClosed,
    Run,
    SandboxPool,
    TransformSpec,
)
from tests.conftest import event_from, sample

LIMITS = Limits(time_seconds=0.3)
TRACK = (
    "function handler(w) { console.log('hi'); w.url = 'https://api.segment.io/v1/track';"
    " w.headers = {'X-Id': w.eventType};"
    " w.payload = {userId: 'u', event: 'Payment Completed'}; return w; }"
)
# One C call that QuickJS's interrupt never sees: it would run for minutes.
STUCK_IN_C = "function handler(w) { Array.prototype.join.call({length: 2**32}, ''); return w; }"


def spec(name: str, source: str) -> TransformSpec:
    return TransformSpec.of(
        Transform(name=name, source=source, filename=f"{name}.js", limits=LIMITS)
    )


@pytest.fixture
def pool() -> Iterator[SandboxPool]:
    made = SandboxPool(2)
    yield made
    made.close()


def test_outcomes_cross_the_process_boundary_unchanged(pool: SandboxPool) -> None:
    event = event_from(sample("payment.succeeded"), "msg_same")
    direct = Transform(name="t", source=TRACK, filename="t.js", limits=LIMITS).run(event)
    (through,) = pool.run([Run(spec("t", TRACK), event)])
    assert through == direct
    assert through.size == direct.size > 0  # what the transform stage bounds its rounds by
    assert through.requests[0].headers == {"X-Id": "payment.succeeded"}
    assert through.logs == (("log", "hi"),)


def test_the_sandbox_process_works_out_each_events_search_terms(pool: SandboxPool) -> None:
    """Beside the outcomes, the child sends back each event's search terms, so that the worker
    storing them does not make them itself."""
    event = event_from(sample("payment.succeeded"), "msg_terms")
    pool.run([Run(spec("t", TRACK), event), Run(spec("u", TRACK), event)])
    assert "terms" in vars(event)  # given by the child, not yet worked out here
    assert event.terms == event_terms("msg_terms", event.body)
    assert "msg_terms" in event.terms and "cus_8vbc6jdzzpeqfbpudpj0k" in event.terms


def test_a_run_stuck_in_a_builtin_is_stopped_and_the_rest_deliver(pool: SandboxPool) -> None:
    event = event_from(sample("payment.succeeded"))
    good, stuck = spec("good", TRACK), spec("stuck", STUCK_IN_C)
    runs = [Run(good, event)] * 5 + [Run(stuck, event)] + [Run(good, event)] * 5
    started = time.monotonic()
    outcomes = pool.run(runs)
    took = time.monotonic() - started
    kinds = [o.kind for o in outcomes]
    assert kinds == [OutcomeKind.DELIVER] * 5 + [OutcomeKind.ERROR] + [OutcomeKind.DELIVER] * 5
    assert outcomes[5].hit_limit
    assert "stuck.js: time limit of 0.3 s exceeded inside a built-in call" in (
        outcomes[5].error or ""
    )
    assert pool.restarts == 1
    # Backstop at 1.5 x 0.3 + 0.5 s of the child's CPU; wall time allows a busy machine.
    assert took < 30
    assert [o.kind for o in pool.run([Run(good, event)] * 3)] == [OutcomeKind.DELIVER] * 3


def test_a_transform_that_does_not_compile_is_an_error_outcome(pool: SandboxPool) -> None:
    broken = TransformSpec("b", "v1", "function handler(w) {", "b.js", "", {}, LIMITS)
    (outcome,) = pool.run([Run(broken, event_from(sample("payment.succeeded")))])
    assert outcome.kind is OutcomeKind.ERROR and "b.js" in (outcome.error or "")


def test_a_new_version_is_compiled_anew(pool: SandboxPool) -> None:
    event = event_from(sample("payment.succeeded"))
    first = TransformSpec("t", "v1", TRACK, "t.js", "", {}, LIMITS)
    second = TransformSpec(
        "t", "v2", TRACK.replace("Payment Completed", "Paid"), "t.js", "", {}, LIMITS
    )
    (a,) = pool.run([Run(first, event)])
    (b,) = pool.run([Run(second, event)])
    assert a.requests[0].payload["event"] == "Payment Completed"
    assert b.requests[0].payload["event"] == "Paid"


def test_sandbox_processes_die_with_their_parent(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import json, sys
            from dodo_transform.transforms.engine import Transform
            from dodo_transform.limits import Limits
            from dodo_transform.transforms.sandbox_processes import Run, SandboxPool, TransformSpec
            from tests.conftest import event_from, sample

            if __name__ == "__main__":
                pool = SandboxPool(1)
                stuck = TransformSpec.of(Transform(name="s", source={STUCK_IN_C!r},
                    filename="s.js", limits=Limits(time_seconds=600)))
                pool.run([Run(TransformSpec.of(Transform(name="g", source="function handler(w) {{ return w; }}", filename="g.js")), event_from(sample("payment.succeeded")))])
                print(json.dumps(pool._all[0].process.pid), flush=True)
                pool.run([Run(stuck, event_from(sample("payment.succeeded")))])
            """
        )
    )
    root = Path(__file__).resolve().parents[1]
    parent = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        cwd=tmp_path,
        env=os.environ | {"PYTHONPATH": str(root)},
    )
    assert parent.stdout is not None
    with parent.stdout:
        child = json.loads(parent.stdout.readline())
    time.sleep(0.5)  # the child is now inside the endless C call
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{child}").exists():
        state = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state == "Z":
            break  # dead, waiting only to be reaped by init
        time.sleep(0.05)
    else:
        assert not Path(f"/proc/{child}").exists(), "the sandbox process outlived its parent"


def test_old_versions_run_again_after_many_newer_ones() -> None:
    pool = SandboxPool(1)  # one child sees every version
    event = event_from(sample("payment.succeeded"))
    versions = [
        TransformSpec(
            "t", f"v{n}", TRACK.replace("Payment Completed", f"E{n}"), "t.js", "", {}, LIMITS
        )
        for n in range(70)
    ]
    for spec_ in versions:
        pool.run([Run(spec_, event)])
    try:
        (again,) = pool.run([Run(versions[0], event)])
    finally:
        pool.close()
    assert again.kind is OutcomeKind.DELIVER and again.requests[0].payload["event"] == "E0"
    assert pool.restarts == 0


def test_a_version_stopped_three_times_in_a_batch_is_not_run_again() -> None:
    pool = SandboxPool(1)
    event = event_from(sample("payment.succeeded"))
    stuck = spec("stuck", STUCK_IN_C)
    try:
        outcomes = pool.run([Run(stuck, event)] * 5)
    finally:
        pool.close()
    assert ["built-in call" in (o.error or "") for o in outcomes] == [True] * 3 + [False] * 2
    assert all("quarantined" in (o.error or "") for o in outcomes[3:])
    assert pool.restarts == 3


def test_closing_the_pool_mid_batch_ends_the_batch_without_outcomes_or_new_children() -> None:
    pool = SandboxPool(1)
    event = event_from(sample("payment.succeeded"))
    busy = spec(
        "busy",
        "function handler(w) { const t = Date.now(); while (Date.now() - t < 200); return w; }",
    )
    ended: list[BaseException | list[object]] = []

    def run() -> None:
        try:
            ended.append(pool.run([Run(busy, event)] * 10))
        except BaseException as error:  # what the waiting thread gets is the point
            ended.append(error)

    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(0.6)  # the child is in the middle of the batch
    pool.close()
    worker.join(10)
    assert not worker.is_alive()
    (result,) = ended
    assert isinstance(result, PoolClosed)  # not an OSError from a pipe closed under it
    assert pool.restarts == 0  # no child was started again while closing
    assert all(process.process is None for process in pool._all)


def test_a_batch_whose_outcomes_are_big_comes_back_in_parts() -> None:
    """Handlers returning megabytes: the worker never holds a whole batch's worth at once,
    and every outcome arrives."""
    big = "function handler(w) { w.url = 'https://hooks.example.com/x'; w.payload = {blob: 'x'.repeat(6 * 1024 * 1024)}; return w; }"
    pool = SandboxPool(1)
    try:
        event = event_from(sample("payment.succeeded"))
        outcomes = pool.run([Run(spec("big", big), event) for _ in range(5)])
        parts = pool.batches
    finally:
        pool.close()
    assert [len(o.requests[0].payload["blob"]) for o in outcomes] == [6 * 1024 * 1024] * 5
    assert parts == 2  # 16 MB at once: three runs, then the other two
