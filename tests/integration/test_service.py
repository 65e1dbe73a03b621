"""The relay end to end: real signatures, the real pipeline and sandbox, a real Segment
stand-in. The service runs in this process (`server`); a few smoke runs start `serve` itself,
and the command line runs through its app (`CliRunner`) but where the printed command is the
point."""

from __future__ import annotations

import base64
import json
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dodo_transform.testing import (
    SECRET,
    WRITE_KEY,
    InProcessServer,
    Reply,
    SegmentStandIn,
    Server,
    descendants,
    server_env,
    server_settings,
    wait_until,
)
from tests.command_line import Ran
from tests.command_line import run as cli
from tests.conftest import EXAMPLES, shipped_transforms
from tests.integration.conftest import example
from tests.test_readme import a_fresh_checkout

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    """One service for the tests of what the webhook endpoint refuses: none stores anything."""
    workdir = tmp_path_factory.mktemp("edge")
    shipped_transforms(workdir / "transforms")
    with (
        SegmentStandIn(WRITE_KEY).running() as standin,
        InProcessServer(workdir, **server_settings(standin)) as running,
    ):
        yield running


def test_seed_transforms_deliver_to_segment_with_basic_auth(
    process_server: Server, standin: SegmentStandIn
) -> None:
    """`serve` itself, end to end: the HTTP process, its worker process, the sandbox."""
    server = process_server
    assert server.post(example("payment.succeeded"), webhook_id="msg_pay1").status_code == 200
    by_type = {m["type"]: m for m in standin.wait_for(2)}
    assert set(by_type) == {"track", "identify"}
    token = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    assert all(r.headers["Authorization"] == f"Basic {token}" for r in standin.accepted())
    track = by_type["track"]
    assert track["event"] == "Payment Completed"
    assert track["properties"]["amount"] == "24.99"
    assert track["userId"] == "cus_8VbC6JDZzPEqfBPUdpj0K"
    assert track["timestamp"] == "2026-08-14T09:21:07.481233Z"
    assert track["messageId"].startswith("dodo-")
    assert track["context"]["library"]["name"] == "dodo-transform"
    assert by_type["identify"]["traits"]["total_spent"] == "24.99"
    server.wait_until(lambda: len(server.deliveries("delivered")) == 2, what="delivered status")
    skipped = server.deliveries("skipped")
    assert [d["transform"] for d in skipped] == ["segment_subscription_lifecycle"]


def test_a_redelivered_webhook_id_is_stored_once(
    server: InProcessServer, standin: SegmentStandIn
) -> None:
    first = server.post(example("subscription.active"), webhook_id="msg_dup")
    second = server.post(example("subscription.active"), webhook_id="msg_dup")
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json()["id"] == second.json()["id"]
    assert second.json()["duplicate"] is True
    standin.wait_for(1)
    server.wait_idle()
    assert len(standin.accepted()) == 1


@pytest.mark.parametrize(
    ("headers", "status", "reason"),
    [
        ({"webhook-signature": ""}, 401, "missing header"),
        (
            {"webhook-signature": "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="},
            401,
            "no matching",
        ),
        ({"webhook-signature": "garbage"}, 401, "malformed"),
        ({"webhook-timestamp": str(int(time.time()) - 3600)}, 401, "5 minutes"),
    ],
)
def test_bad_signatures_get_401_with_a_reason(
    edge: InProcessServer, headers: dict[str, str], status: int, reason: str
) -> None:
    response = edge.post(example("payment.succeeded"), headers=headers)
    assert response.status_code == status
    assert reason in response.json()["error"]
    assert edge.api("GET", "/api/events").json() == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not valid JSON"),
        (b'{"type": "x", "data": "\xff\xfe"}', "not UTF-8"),
        (b"[1]", "not a JSON object"),
        (b'{"data": {}}', "no string field `type`"),
        (b"[" * 50_000 + b"]" * 50_000, "nested too deeply"),
    ],
)
def test_verified_but_unusable_bodies_get_400(
    edge: InProcessServer, body: bytes, reason: str
) -> None:
    response = edge.post(body)
    assert response.status_code == 400
    assert reason in response.json()["error"]


def test_oversize_bodies_get_413(edge: InProcessServer) -> None:
    body = json.dumps({"type": "payment.succeeded", "pad": "x" * (1024 * 1024)}).encode()
    assert edge.post(body).status_code == 413
    assert edge.api("GET", "/api/events").json() == []


def test_hot_reload_applies_changes_and_keeps_the_last_good_version(
    server: InProcessServer, standin: SegmentStandIn, workdir: Path
) -> None:
    track = workdir / "transforms" / "segment_track_payments.js"
    with server.reloading("segment_track_payments"):
        track.write_text(track.read_text().replace("Payment Completed", "Order Completed"))
    server.post(example("payment.succeeded"))
    events = {m.get("event") for m in standin.wait_for(2) if m["type"] == "track"}
    assert events == {"Order Completed"}

    track.write_text("function handler(webhook) { return webhook +; }")
    server.wait_until(
        lambda: any(t["load_error"] for t in server.api("GET", "/api/transforms").json()),
        what="load error reported",
    )
    server.post(example("payment.succeeded"))
    tracks = [m for m in standin.wait_for(4) if m["type"] == "track"]
    assert [m["event"] for m in tracks] == ["Order Completed", "Order Completed"]

    with server.reloading("segment_identify_customer", "extra"):
        (workdir / "transforms" / "segment_identify_customer.js").unlink()
        (workdir / "transforms" / "extra.js").write_text(
            "function handler(w) { if (w.eventType !== 'refund.succeeded') return w;"
            " w.url = 'https://api.segment.io/v1/track';"
            " w.payload = {userId: w.payload.data.customer.customer_id, event: 'Order Refunded'};"
            " return w; }"
        )
    server.post(example("refund.succeeded"))
    server.post(example("payment.succeeded"))
    standin.wait_for(6)
    server.wait_idle()
    newest = standin.messages()[4:]
    assert sorted((m["type"], m["event"]) for m in newest) == [
        ("track", "Order Completed"),
        ("track", "Order Refunded"),
    ]
    assert len(standin.messages()) == 6  # the deleted identify transform sent nothing


def test_retry_then_success(server: InProcessServer, standin: SegmentStandIn) -> None:
    standin.script = [Reply(503), Reply(500)]
    server.post(example("subscription.active"))
    standin.wait_for(1)
    assert [r.status for r in standin.received] == [503, 500, 200]
    delivered = server.wait_until(lambda: server.deliveries("delivered"), what="delivered")
    detail = server.api("GET", f"/api/deliveries/{delivered[0]['id']}").json()
    assert [a["status_code"] for a in detail["attempt_log"]] == [503, 500, 200]


def test_429_waits_for_retry_after(server: InProcessServer, standin: SegmentStandIn) -> None:
    standin.script = [Reply(429, {"Retry-After": "1"})]
    server.post(example("subscription.active"))
    standin.wait_for(1, timeout=20)
    first, second = standin.received[0], standin.received[1]
    assert first.messages[0]["messageId"] == second.messages[0]["messageId"]
    assert first.status == 429
    # Its own backoff would have retried after 0.1 s (`server_settings`).
    assert second.at - first.at >= 0.95


def test_a_final_4xx_is_dead_without_retries(
    server: InProcessServer, standin: SegmentStandIn
) -> None:
    standin.default = Reply(400)
    server.post(example("subscription.active"))
    dead = server.wait_until(lambda: server.deliveries("dead"), what="dead")
    assert "HTTP 400" in dead[0]["error"]
    server.wait_idle()
    assert len(standin.received) == 1


def test_destinations_off_the_allowlist_are_blocked(
    server: InProcessServer, standin: SegmentStandIn, workdir: Path
) -> None:
    with server.reloading("sneaky"):
        (workdir / "transforms" / "sneaky.js").write_text(
            "function handler(w) { return ["
            " Object.assign({}, w, {url: 'http://169.254.169.254/latest/meta-data/'}),"
            " Object.assign({}, w, {url: 'http://localhost:6379/'}),"
            " Object.assign({}, w, {url: 'https://internal.example.com/'})]; }"
        )
    server.post(example("dispute.opened"))
    blocked = server.wait_until(
        lambda: len(server.deliveries("blocked")) == 3 and server.deliveries("blocked"),
        what="blocked",
    )
    assert all("not an allowed destination" in d["error"] for d in blocked)
    assert standin.received == []


def test_replay_after_fixing_a_transform(
    server: InProcessServer, standin: SegmentStandIn, workdir: Path
) -> None:
    track = workdir / "transforms" / "segment_track_payments.js"
    good = track.read_text()
    with server.reloading("segment_track_payments"):
        track.write_text(good.replace("p.customer.customer_id", "p.nobody.customer_id"))
    server.post(example("payment.succeeded"))
    failed = server.wait_until(lambda: server.deliveries("failed"), what="failed")
    assert "segment_track_payments.js:6:" in failed[0]["error"]
    assert "TypeError" in failed[0]["error"]
    with server.reloading("segment_track_payments"):
        track.write_text(good)
    answer = server.api("POST", f"/api/deliveries/{failed[0]['id']}/replay")
    assert answer.status_code == 200, answer.text
    tracks = [m for m in standin.wait_for(2) if m["type"] == "track"]
    assert tracks[0]["properties"]["amount"] == "24.99"
    assert server.deliveries("replayed")[0]["id"] == failed[0]["id"]


def test_killed_between_accept_and_delivery_then_restarted_delivers_everything(
    workdir: Path, standin: SegmentStandIn
) -> None:
    """SIGKILL: the process is the point."""
    standin.default = Reply(503)
    server = Server(workdir, server_env(standin)).start()
    ids = [f"msg_kill_{n}" for n in range(20)]
    for webhook_id in ids:
        assert server.post(example("subscription.active"), webhook_id=webhook_id).status_code == 200
    server.kill()
    standin.default = Reply(200)
    server.start()
    try:
        received = standin.wait_for(20, timeout=30)
        assert len({m["messageId"] for m in received}) == 20
        events = server.api("GET", "/api/events", params={"limit": 100}).json()
        assert sorted(e["webhook_id"] for e in events) == sorted(ids)
    finally:
        server.stop()


def test_dry_run_without_a_write_key_records_the_exact_request(
    workdir: Path, standin: SegmentStandIn
) -> None:
    without_a_write_key = server_settings(standin, segment_write_key=None)
    with InProcessServer(workdir, **without_a_write_key) as server:
        server.post(example("subscription.active"))
        dry = server.wait_until(lambda: server.deliveries("dry_run"), what="dry run")
        assert dry[0]["request"]["url"] == f"{standin.url}/v1/batch"
        (message,) = dry[0]["request"]["payload"]["batch"]
        assert message["event"] == "Subscription Started"
        assert standin.received == []


def test_first_run_creates_a_secret_and_send_uses_it(
    workdir: Path, standin: SegmentStandIn
) -> None:
    with InProcessServer(workdir, **server_settings(standin, webhook_secret=None)) as server:
        secret_file = workdir / "data" / "webhook-secret"
        assert secret_file.read_text().startswith("whsec_")
        shown = server.log.read_text()
        assert "a new signing secret for local trials is in" in shown
        assert secret_file.read_text().strip() not in shown  # never printed: logs are kept
        sent = cli(
            "send",
            EXAMPLES / "events" / "subscription.active.json",
            "--url",
            f"{server.url}/webhooks/dodo",
            cwd=workdir,
            env={"DODO_TRANSFORM_DATA_DIR": str(workdir / "data")},
        )
        assert sent.returncode == 0, sent.stderr
        assert sent.stdout.startswith("200")
        standin.wait_for(1)


TRACK_OUTCOME = (
    'dodo_transform_outcomes_total{outcome="deliver",transform="segment_track_payments"}'
)


def test_health_metrics_and_admin_guard(server: InProcessServer, standin: SegmentStandIn) -> None:
    assert server.api("GET", "/healthz").json() == {"status": "ok"}
    assert server.api("GET", "/readyz").status_code == 200
    server.post(example("payment.succeeded"))
    server.post(b"nope")
    standin.wait_for(2)
    metrics = server.wait_until(
        lambda: TRACK_OUTCOME in (text := server.api("GET", "/metrics").text) and text,
        what="the pipeline's metrics",
    )
    assert "dodo_webhooks_received_total 1.0" in metrics
    assert 'dodo_webhooks_rejected_total{reason="payload"} 1.0' in metrics
    assert "dodo_queue_depth" in metrics
    server.wait_until(
        lambda: "dodo_deliveries_delivered_total" in server.api("GET", "/metrics").text
    )


def test_admin_api_needs_the_token_when_one_is_set(workdir: Path, standin: SegmentStandIn) -> None:
    with InProcessServer(workdir, **server_settings(standin, admin_token="s3cret-admin")) as server:
        assert server.api("GET", "/api/events").status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert server.api("GET", "/api/events", headers=wrong).status_code == 401
        right = {"Authorization": "Bearer s3cret-admin"}
        assert server.api("GET", "/api/events", headers=right).status_code == 200
    assert "s3cret-admin" not in server.log.read_text()


def test_secrets_never_reach_logs_metrics_or_api_answers(
    server: InProcessServer, standin: SegmentStandIn
) -> None:
    server.post(example("payment.succeeded"))
    standin.wait_for(2)
    server.wait_until(lambda: len(server.deliveries("delivered")) == 2)
    answers = [
        server.api("GET", path).text
        for path in ("/api/events", "/api/deliveries", "/api/transforms", "/metrics", "/readyz")
    ]
    answers.append(server.api("GET", "/api/deliveries/1").text)
    server.stop()
    token = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    for text in [*answers, server.log.read_text()]:
        for secret in (SECRET, SECRET.removeprefix("whsec_"), WRITE_KEY, token):
            assert secret not in text


def test_the_pipeline_can_run_inside_the_http_process(
    workdir: Path, standin: SegmentStandIn
) -> None:
    """`serve` itself, with the pipeline in its HTTP process (as every `InProcessServer` runs
    it): the setting reaches the process."""
    server = Server(workdir, server_env(standin, DODO_TRANSFORM_WORKER_PROCESS="false")).start()
    try:
        server.post(example("payment.succeeded"))
        assert {m["type"] for m in standin.wait_for(2)} == {"track", "identify"}
        assert server.wait_until(lambda: len(server.deliveries("delivered")) == 2)
    finally:
        server.stop()


def test_blocked_messages_are_released_after_the_allowlist_is_fixed(
    workdir: Path, standin: SegmentStandIn
) -> None:
    (workdir / "transforms" / "partner.js").write_text(
        "function handler(w) { w.url = 'https://partner.example.com/hook'; return w; }"
    )
    server = InProcessServer(workdir, **server_settings(standin)).start()
    try:
        server.post(example("dispute.opened"))
        (blocked,) = server.wait_until(lambda: server.deliveries("blocked"), what="blocked")
        assert blocked["attempts"] == 0
        server.stop()
        server.settings["allowed_hosts"] = "partner.example.com"
        server.start()
        done = cli("replay", "--status", "blocked", "--json", "--server", server.url, cwd=workdir)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["total"] == 1  # a bulk replay of the one
        # Released: now tried for real (the tests reach no host beyond loopback, so it is
        # refused, as a host that does not resolve is, and retried).
        tried = server.wait_until(
            lambda: [
                d for d in server.deliveries() if d["transform"] == "partner" and d["attempts"] > 0
            ],
            what="an attempt at the released message",
        )
        assert tried[0]["status"] in ("pending", "dead")
        refused = cli("replay", "--failed", "--status", "dead", "--server", server.url, cwd=workdir)
        assert refused.returncode == 2 and "one of --failed, --dead, --status" in refused.stderr
    finally:
        server.stop()


def test_the_banners_suggestion_works_as_printed(
    tmp_path: Path, standin: SegmentStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The printed command, run as printed (a process), from where the service was started:
    a fresh checkout, as the README's commands run."""
    checkout = a_fresh_checkout(tmp_path)
    monkeypatch.chdir(checkout)
    with InProcessServer(checkout, **server_settings(standin)) as server:
        (line,) = [ln for ln in server.log.read_text().splitlines() if "try it:" in ln]
        command = shlex.split(line.split("try it:", 1)[1])
        # By name where the PATH has it, else by the interpreter the tests run in.
        by_path = command[:3] == [sys.executable, "-m", "dodo_transform"]
        assert command[0] == "dodo-transform" or by_path
        assert "send" in command and "--server" in command
        done = subprocess.run(
            command,
            cwd=checkout,
            env=server_env(standin),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0 and done.stdout.startswith("200"), done.stderr
        standin.wait_for(1)


def test_status_transforms_events_and_show_from_the_cli(
    server: InProcessServer, standin: SegmentStandIn, workdir: Path
) -> None:
    (workdir / "transforms" / "broken.js").write_text("function handler(w) {")
    server.wait_until(
        lambda: any(
            t["name"] == "broken" and t["load_error"]
            for t in server.api("GET", "/api/transforms").json()
        ),
        what="the broken transform reported",
    )
    server.post(example("payment.succeeded"), webhook_id="msg_cli_view")
    standin.wait_for(2)
    server.wait_idle()

    def run(*args: str) -> str:
        # Tables as wide as their words.
        done = cli(*args, "--server", server.url, cwd=workdir, env={"COLUMNS": "250"})
        assert done.returncode == 0, done.stderr
        return done.stdout

    shown = run("status")
    assert "ready" in shown and "mode: live" in shown and "delivered" in shown
    assert "broken" in shown and "segment_track_payments" in shown
    transforms = run("transforms")
    assert "broken" in transforms and "live" in transforms
    events = run("events")
    assert "msg_cli_view" in events and "segment_track_payments: delivered" in events
    listed = run("deliveries")
    customer = example("payment.succeeded")["data"]["customer"]["customer_id"]
    assert f'track "Payment Completed" {customer}' in listed
    assert f"identify {customer}" in listed
    event_id = server.api("GET", "/api/events").json()[0]["id"]
    detail = run("show", str(event_id))
    assert "payment.succeeded (msg_cli_view, live mode)" in detail  # DODO_WEBHOOK_SECRET's
    assert "POST http" in detail and "attempt at" in detail and "HTTP 200" in detail


def test_each_reload_and_each_load_error_is_one_log_line(
    server: InProcessServer, workdir: Path
) -> None:
    track = workdir / "transforms" / "segment_track_payments.js"
    assert "transform segment_track_payments loaded" in server.log.read_text()
    mark = server.log.stat().st_size
    with server.reloading("segment_track_payments"):
        track.write_text(track.read_text().replace("Payment Completed", "Payment Made"))
    (workdir / "transforms" / "broken.js").write_text("function handler(w) {")
    server.wait_until(
        lambda: "broken.js" in server.log.read_bytes()[mark:].decode(), what="the load error"
    )
    # The point: nothing more is said of these changes at the later reloads any other file's
    # change makes, however many.
    assert server.service is not None
    for _ in range(3):
        server.service.registry.reload()
    logged = server.log.read_bytes()[mark:].decode()
    assert logged.count("transform segment_track_payments reloaded") == 1
    assert logged.count("transform broken failed to load") == 1


def test_a_transform_added_later_is_backfilled_from_the_cli(
    server: InProcessServer, standin: SegmentStandIn, workdir: Path
) -> None:
    server.post(example("payment.succeeded"), webhook_id="msg_before")
    standin.wait_for(2)
    server.wait_idle()

    def run(*args: str) -> Ran:
        return cli(*args, "--server", server.url, cwd=workdir, env={"COLUMNS": "250"})

    with server.reloading("late_identify"):
        (workdir / "transforms" / "late_identify.js").write_text(
            "function handler(w) { w.url = 'https://api.segment.io/v1/identify';"
            " w.payload = {userId: w.payload.data.customer.customer_id, traits: {late: true}};"
            " return w; }"
        )
    counted = run("backfill", "late_identify", "--type", "payment.succeeded")
    assert counted.returncode == 0, counted.stderr
    assert "1 stored event has no delivery from late_identify: 1 payment.succeeded" in (
        counted.stdout
    )
    assert "run again with --yes" in counted.stdout
    assert len(standin.messages()) == 2  # counting sent nothing
    started = run("backfill", "late_identify", "--type", "payment.succeeded", "--yes")
    assert started.returncode == 0 and "backfill 1 started" in started.stdout, started.stderr
    late = [m for m in standin.wait_for(3) if m.get("traits", {}).get("late")]
    assert late[0]["timestamp"] == example("payment.succeeded")["timestamp"]
    server.wait_until(
        lambda: "done, 1 events" in run("status").stdout, what="the backfill shown as done"
    )
    again = run("backfill", "late_identify")
    assert "nothing to backfill" in again.stdout
    unknown = run("backfill", "late_identfy")
    assert unknown.returncode == 1
    assert "HTTP 404: no transform late_identfy (loaded: " in unknown.stderr


def test_a_handler_runs_on_a_stored_event_from_the_cli(
    server: InProcessServer, standin: SegmentStandIn, workdir: Path
) -> None:
    server.post(example("payment.succeeded"), webhook_id="msg_stored")
    standin.wait_for(2)
    event_id = server.api("GET", "/api/events").json()[0]["id"]
    done = cli(
        "test",
        "transforms/segment_track_payments.js",
        "--event-id",
        event_id,
        "--json",
        "--server",
        server.url,
        cwd=workdir,
    )
    assert done.returncode == 0, done.stderr
    (request,) = json.loads(done.stdout)["requests"]
    assert request["payload"]["event"] == "Payment Completed"
    assert (
        request["payload"]["userId"]
        == example("payment.succeeded")["data"]["customer"]["customer_id"]
    )
    assert len(standin.messages()) == 2  # a test sends nothing


def test_serve_logs_text_at_the_level_its_flags_ask_for(
    workdir: Path, standin: SegmentStandIn
) -> None:
    """`serve`'s flags, as the process takes them: its own output is the point."""

    class TextServer(Server):
        def command(self) -> list[str]:
            return [*super().command(), "--log-format", "text", "--log-level", "warning"]

    server = TextServer(workdir, server_env(standin)).start()
    try:
        server.post(example("payment.succeeded"), webhook_id="msg_logged")
        standin.wait_for(2)
        forged = server.post(example("payment.succeeded"), secret="whsec_" + "A" * 32)
        assert forged.status_code == 401
        server.wait_until(lambda: "WARNING" in server.log.read_text(), what="the warning line")
    finally:
        assert server.process is not None
        helpers = descendants(server.process.pid)  # the worker, multiprocessing's tracker ...
        server.stop()
    # A clean stop leaves nothing to warn of: what its helpers say as they exit goes to the
    # same log (the resource tracker warned of leaked semaphores at every stop).
    wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in helpers), 15, "exits")
    assert "leaked" not in server.log.read_text()
    assert server.process.returncode == 0  # SIGTERM is a clean stop, not a kill (143)
    lines = server.log.read_text().splitlines()
    (warning,) = [line for line in lines if "signature not verified" in line]
    assert " WARNING webhook refused" in warning and "DODO_WEBHOOK_SECRET" in warning
    assert not any(line.startswith("{") for line in lines)  # text, not JSON
    assert not any(" INFO " in line for line in lines)  # nothing below warning
