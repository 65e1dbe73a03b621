"""No process of the service outlives the server, however the server ends."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from dodo_transform.testing import SegmentStandIn, Server, children, server_env
from tests.conftest import EXAMPLES


def gone(pid: int) -> bool:
    """The process has exited (a zombie waiting for init to reap it counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def descendants(pid: int) -> list[int]:
    found = children(pid)
    return found + [grandchild for child in found for grandchild in descendants(child)]


def test_after_a_sigkill_of_the_server_every_child_exits(
    workdir: Path, standin: SegmentStandIn
) -> None:
    server = Server(workdir, server_env(standin)).start()
    assert server.process is not None
    assert (
        server.post((EXAMPLES / "events" / "payment.succeeded.json").read_bytes()).status_code
        == 200
    )
    standin.wait_for(1)  # the pipeline has run: its processes exist
    family = descendants(server.process.pid)
    assert server.worker_pid() in family
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not all(gone(pid) for pid in family):
        time.sleep(0.1)
    assert [pid for pid in family if not gone(pid)] == []
