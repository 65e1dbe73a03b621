"""Storage faults: when the store cannot be written the webhook endpoint answers 503 (Dodo will
retry) and never 2xx, and the service recovers by itself once the store is writable again."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import pytest

from dodo_transform.testing import SegmentStandIn, Server, server_env
from tests.integration.conftest import example

pytestmark = pytest.mark.reliability


def limit_file_size(pid: int, size: str) -> None:
    """Cap the size of any file the process writes (the soft RLIMIT_FSIZE): the disk is 'full'."""
    subprocess.run(["prlimit", f"--pid={pid}", f"--fsize={size}:"], check=True)


def padded(n: int) -> dict[str, object]:
    body = copy.deepcopy(example("payment.succeeded"))
    body["data"]["customer"]["customer_id"] = f"cus_full_{n}"
    body["data"]["padding"] = "p" * 8000
    return body


def test_a_full_disk_answers_503_and_recovers(workdir: Path, standin: SegmentStandIn) -> None:
    server = Server(workdir, server_env(standin)).start()
    assert server.process is not None
    try:
        data = workdir / "data"
        used = max(path.stat().st_size for path in data.iterdir() if path.is_file())
        limit_file_size(server.process.pid, str(used + 64 * 1024))
        answers = []
        for n in range(200):
            answers.append(server.post(padded(n), webhook_id=f"msg_full_{n}").status_code)
            if answers[-1] == 503:
                break
        assert answers[-1] == 503, "the store never filled up"
        assert set(answers) <= {200, 503}
        refused = len(answers) - 1
        response = server.post(padded(999), webhook_id="msg_while_full")
        assert response.status_code == 503
        assert response.headers["Retry-After"]
        assert server.process.poll() is None

        limit_file_size(server.process.pid, "unlimited")
        recovered = server.wait_until(
            lambda: (
                server.post(example("payment.succeeded"), webhook_id="msg_after").status_code == 200
            ),
            what="ingest to recover",
        )
        assert recovered
        stored = {
            e["webhook_id"] for e in server.api("GET", "/api/events", params={"limit": 1000}).json()
        }
        acknowledged = {f"msg_full_{n}" for n in range(refused)} | {"msg_after"}
        assert acknowledged <= stored
        assert "msg_while_full" not in stored
        server.wait_until(lambda: server.api("GET", "/readyz").status_code == 200, what="ready")
    finally:
        server.stop()
