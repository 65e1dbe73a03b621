"""Connector snippets through the real service: each reaches its own destination (a real local
HTTP server standing in for it) with its credential, for the events it handles, and nothing
else goes anywhere."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dodo_transform.testing import InProcessServer, SegmentStandIn, server_settings
from tests.conftest import EXAMPLES
from tests.integration.conftest import example


@contextmanager
def destination() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local HTTP server that records every request and answers 200."""
    received: list[dict[str, Any]] = []

    class Record(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.append(
                {"path": self.path, "headers": dict(self.headers), "json": json.loads(body)}
            )
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Record)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def test_pasted_snippets_with_three_lines_of_config_deliver_what_they_handle(
    workdir: Path, standin: SegmentStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = workdir / "transforms"
    for name in ("slack_payment_alerts", "windmill_refund_jobs"):
        shutil.copy(EXAMPLES / "connectors" / f"{name}.js", folder)
    with destination() as (base, received):
        (folder / "transforms.toml").write_text(
            "[slack_payment_alerts]\n"
            f'url = "{base}/services/T0/B0/hook"\n'
            'events = ["payment.succeeded", "payment.failed"]\n'
            "[windmill_refund_jobs]\n"
            f'url = "{base}/api/w/shop/jobs/run/p/f/billing/refund"\n'
            'events = ["refund.*"]\n'
            'headers = { Authorization = "Bearer ${WINDMILL_TOKEN}" }\n'
        )
        monkeypatch.setenv("WINDMILL_TOKEN", "wm_live_Secret")
        with InProcessServer(workdir, **server_settings(standin)) as server:
            for event_type in ("payment.succeeded", "refund.succeeded", "subscription.active"):
                assert server.post(example(event_type)).status_code == 200
            server.wait_until(lambda: len(received) >= 2, what="both connector requests")
            server.wait_idle()
            by_path = {r["path"]: r for r in received}
            assert sorted(by_path) == [
                "/api/w/shop/jobs/run/p/f/billing/refund",
                "/services/T0/B0/hook",
            ]
            slack = by_path["/services/T0/B0/hook"]
            assert slack["json"]["text"].startswith("✅ Payment received: $")
            assert "Authorization" not in slack["headers"]
            windmill = by_path["/api/w/shop/jobs/run/p/f/billing/refund"]
            assert windmill["headers"]["Authorization"] == "Bearer wm_live_Secret"
            assert windmill["json"]["succeeded"] is True
            # The events a connector does not receive are not even stored for it.
            stored = {(d["transform"], d["event_type"]) for d in server.deliveries()}
            assert ("windmill_refund_jobs", "payment.succeeded") not in stored
            assert ("slack_payment_alerts", "subscription.active") not in stored
            # And the credential is never shown.
            assert "wm_live_Secret" not in server.api("GET", "/api/deliveries").text
