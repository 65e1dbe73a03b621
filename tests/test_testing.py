"""`python -m dodo_transform.testing segment` runs the Segment stand-in for a person: it listens
where told, checks the write key and prints each message it receives, never the key."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dodo_transform.testing import Received, describe, free_port, hold_to_cpus, wait_until

KEY = "wk_printed_never"
STANDIN = [sys.executable, "-m", "dodo_transform.testing", "segment"]


@pytest.fixture
def standin() -> Iterator[tuple[subprocess.Popen[str], int]]:
    """The stand-in as a person starts it: a process of its own (its output is the point)."""
    port = free_port()
    with subprocess.Popen(
        [*STANDIN, "--port", str(port), "--write-key", KEY],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        first = process.stdout.readline()
        try:
            assert f"http://127.0.0.1:{port}" in first, first + process.stderr.read()
            yield process, port
        finally:
            process.terminate()
            process.wait(timeout=10)


def batch(key: str) -> dict[str, object]:
    auth = base64.b64encode(f"{key}:".encode()).decode()
    message = {"type": "track", "event": "Payment Completed", "userId": "cus_1", "messageId": "m1"}
    return {
        "content": json.dumps({"batch": [message]}),
        "headers": {"Authorization": f"Basic {auth}", "Content-Type": "application/json"},
    }


def test_the_runnable_standin_prints_each_message_it_accepts(
    standin: tuple[subprocess.Popen[str], int],
) -> None:
    process, port = standin
    assert process.stdout is not None
    answer = httpx.post(f"http://127.0.0.1:{port}/v1/batch", **batch(KEY))  # type: ignore[arg-type]
    assert answer.status_code == 200
    line = process.stdout.readline()
    assert line.strip() == '200 track "Payment Completed" userId=cus_1 messageId=m1'


def test_the_runnable_standin_refuses_a_wrong_key_and_never_prints_one(
    standin: tuple[subprocess.Popen[str], int],
) -> None:
    process, port = standin
    assert process.stdout is not None
    answer = httpx.post(f"http://127.0.0.1:{port}/v1/batch", **batch("wk_wrong"))  # type: ignore[arg-type]
    assert answer.status_code == 401
    line = process.stdout.readline()
    assert line.startswith("401: wrong write key")
    assert "wk_wrong" not in line and KEY not in line


def test_a_busy_port_is_a_one_line_error() -> None:
    port = free_port()
    with subprocess.Popen(
        [*STANDIN, "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    ) as first:
        assert first.stdout is not None
        wait_until(lambda: first.stdout.readline(), what="the first stand-in")  # type: ignore[union-attr]
        second = subprocess.run(
            [*STANDIN, "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        first.terminate()
    assert second.returncode == 2
    assert second.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}")
    assert "Traceback" not in second.stderr


def test_a_request_that_is_not_segment_json_is_described_not_raised() -> None:
    request = Received("POST", "/v1/batch", {}, b"not json", status=400)
    assert describe(request) == ["400 POST /v1/batch: not Segment's JSON"]


def test_hold_to_cpus_keeps_a_process_its_threads_and_its_children_on_those_cpus() -> None:
    """What `bench_pipeline.py --cpus` runs the service on: threads there before, and a
    process started after, are held."""
    script = (
        "import subprocess, sys, threading, time\n"
        "threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n"
        "print('ready', flush=True)\n"
        "sys.stdin.readline()\n"
        "subprocess.run([sys.executable, '-c',"
        " 'import os; print(sorted(os.sched_getaffinity(0)))'])\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert parent.stdin is not None and parent.stdout is not None
    try:
        assert parent.stdout.readline().strip() == "ready"
        hold_to_cpus(parent.pid, {0})
        threads = list(Path(f"/proc/{parent.pid}/task").glob("[0-9]*"))
        assert len(threads) == 2
        assert all(os.sched_getaffinity(int(task.name)) == {0} for task in threads)
        out, _ = parent.communicate("go\n", timeout=30)
    finally:
        parent.kill()
    assert out.strip() == "[0]"
