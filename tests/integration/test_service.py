"""The relay end to end: the real server process, real signatures, a real Segment stand-in."""

from __future__ import annotations

import base64
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dodo_transform.testing import SECRET, WRITE_KEY, Reply, SegmentStandIn, Server, server_env
from tests.integration.conftest import example

pytestmark = pytest.mark.integration


def test_seed_transforms_deliver_to_segment_with_basic_auth(
    server: Server, standin: SegmentStandIn
) -> None:
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


def test_a_redelivered_webhook_id_is_stored_once(server: Server, standin: SegmentStandIn) -> None:
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
    server: Server, headers: dict[str, str], status: int, reason: str
) -> None:
    response = server.post(example("payment.succeeded"), headers=headers)
    assert response.status_code == status
    assert reason in response.json()["error"]
    assert server.api("GET", "/api/events").json() == []


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
def test_verified_but_unusable_bodies_get_400(server: Server, body: bytes, reason: str) -> None:
    response = server.post(body)
    assert response.status_code == 400
    assert reason in response.json()["error"]


def test_oversize_bodies_get_413(server: Server) -> None:
    body = json.dumps({"type": "payment.succeeded", "pad": "x" * (1024 * 1024)}).encode()
    assert server.post(body).status_code == 413


def test_hot_reload_applies_changes_and_keeps_the_last_good_version(
    server: Server, standin: SegmentStandIn, workdir: Path
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


def test_retry_then_success(server: Server, standin: SegmentStandIn) -> None:
    standin.script = [Reply(503), Reply(500)]
    server.post(example("subscription.active"))
    standin.wait_for(1)
    assert [r.status for r in standin.received] == [503, 500, 200]
    delivered = server.wait_until(lambda: server.deliveries("delivered"), what="delivered")
    detail = server.api("GET", f"/api/deliveries/{delivered[0]['id']}").json()
    assert [a["status_code"] for a in detail["attempt_log"]] == [503, 500, 200]


def test_429_waits_for_retry_after(server: Server, standin: SegmentStandIn) -> None:
    standin.script = [Reply(429, {"Retry-After": "2"})]
    server.post(example("subscription.active"))
    standin.wait_for(1, timeout=20)
    first, second = standin.received[0], standin.received[1]
    assert first.messages[0]["messageId"] == second.messages[0]["messageId"]
    assert first.status == 429
    assert second.at - first.at >= 1.9


def test_a_final_4xx_is_dead_without_retries(server: Server, standin: SegmentStandIn) -> None:
    standin.default = Reply(400)
    server.post(example("subscription.active"))
    dead = server.wait_until(lambda: server.deliveries("dead"), what="dead")
    assert "HTTP 400" in dead[0]["error"]
    server.wait_idle()
    assert len(standin.received) == 1


def test_destinations_off_the_allowlist_are_blocked(
    server: Server, standin: SegmentStandIn, workdir: Path
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
    server: Server, standin: SegmentStandIn, workdir: Path
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
    env = server_env(standin)
    del env["SEGMENT_WRITE_KEY"]
    server = Server(workdir, env).start()
    try:
        server.post(example("subscription.active"))
        dry = server.wait_until(lambda: server.deliveries("dry_run"), what="dry run")
        assert dry[0]["request"]["url"] == f"{standin.url}/v1/batch"
        (message,) = dry[0]["request"]["payload"]["batch"]
        assert message["event"] == "Subscription Started"
        assert standin.received == []
    finally:
        server.stop()


def test_first_run_creates_a_secret_and_send_uses_it(
    workdir: Path, standin: SegmentStandIn
) -> None:
    env = server_env(standin)
    del env["DODO_WEBHOOK_SECRET"]
    server = Server(workdir, env).start()
    try:
        secret_file = workdir / "data" / "webhook-secret"
        assert secret_file.read_text().startswith("whsec_")
        shown = server.log.read_text()
        assert "a new signing secret for local trials is in" in shown
        assert secret_file.read_text().strip() not in shown  # never printed: logs are kept
        sent = subprocess.run(
            [
                sys.executable,
                "-m",
                "dodo_transform",
                "send",
                str(Path(__file__).parents[2] / "examples" / "events" / "subscription.active.json"),
                "--url",
                f"{server.url}/webhooks/dodo",
            ],
            cwd=workdir,
            env=env | {"DODO_TRANSFORM_DATA_DIR": str(workdir / "data")},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert sent.returncode == 0, sent.stderr
        assert sent.stdout.startswith("200")
        standin.wait_for(1)
    finally:
        server.stop()


TRACK_OUTCOME = (
    'dodo_transform_outcomes_total{outcome="deliver",transform="segment_track_payments"}'
)


def test_health_metrics_and_admin_guard(server: Server, standin: SegmentStandIn) -> None:
    assert server.api("GET", "/healthz").json() == {"status": "ok"}
    assert server.api("GET", "/readyz").status_code == 200
    server.post(example("payment.succeeded"))
    server.post(b"nope")
    standin.wait_for(2)
    metrics = server.wait_until(
        lambda: TRACK_OUTCOME in (text := server.api("GET", "/metrics").text) and text,
        what="worker metrics",
    )
    assert "dodo_webhooks_received_total 1.0" in metrics
    assert 'dodo_webhooks_rejected_total{reason="payload"} 1.0' in metrics
    assert "dodo_queue_depth" in metrics
    server.wait_until(
        lambda: "dodo_deliveries_delivered_total" in server.api("GET", "/metrics").text
    )


def test_admin_api_needs_the_token_when_one_is_set(workdir: Path, standin: SegmentStandIn) -> None:
    server = Server(workdir, server_env(standin, DODO_TRANSFORM_ADMIN_TOKEN="s3cret-admin")).start()
    try:
        assert server.api("GET", "/api/events").status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert server.api("GET", "/api/events", headers=wrong).status_code == 401
        right = {"Authorization": "Bearer s3cret-admin"}
        assert server.api("GET", "/api/events", headers=right).status_code == 200
    finally:
        server.stop()
    assert "s3cret-admin" not in server.log.read_text()


def test_secrets_never_reach_logs_metrics_or_api_answers(
    server: Server, standin: SegmentStandIn
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
    server = Server(workdir, server_env(standin)).start()
    try:
        server.post(example("dispute.opened"))
        (blocked,) = server.wait_until(lambda: server.deliveries("blocked"), what="blocked")
        assert blocked["attempts"] == 0
        server.stop()
        server.env = {**server.env, "DODO_TRANSFORM_ALLOWED_HOSTS": "partner.example.com"}
        server.start()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "dodo_transform",
                "replay",
                "--status",
                "blocked",
                "--json",
                "--server",
                server.url,
            ],
            capture_output=True,
            text=True,
            env=server.env,
            cwd=workdir,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["replayed"] == [blocked["id"]]
        # Released: now tried for real (the host does not resolve here, so it is retried).
        tried = server.wait_until(
            lambda: [
                d for d in server.deliveries() if d["transform"] == "partner" and d["attempts"] > 0
            ],
            what="an attempt at the released message",
        )
        assert tried[0]["status"] in ("pending", "dead")
        refused = subprocess.run(
            [
                sys.executable,
                "-m",
                "dodo_transform",
                "replay",
                "--failed",
                "--status",
                "dead",
                "--server",
                server.url,
            ],
            capture_output=True,
            text=True,
            env=server.env,
            cwd=workdir,
            timeout=60,
        )
        assert refused.returncode == 2 and "one of --failed, --dead, --status" in refused.stderr
    finally:
        server.stop()


def test_the_banners_suggestion_works_as_printed(server: Server, standin: SegmentStandIn) -> None:
    (line,) = [ln for ln in server.log.read_text().splitlines() if "try it:" in ln]
    command = shlex.split(line.split("try it:", 1)[1])
    # The server was started as `python -m dodo_transform`: the banner says how to run it
    # again, by name where the PATH has it, else by the same interpreter.
    assert command[0] == "dodo-transform" or command[:3] == [sys.executable, "-m", "dodo_transform"]
    assert "send" in command and "--server" in command
    done = subprocess.run(
        command,
        cwd=Path(__file__).parents[2],  # the README's commands run from the checkout
        env=server.env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0 and done.stdout.startswith("200"), done.stderr
    standin.wait_for(1)


def test_status_transforms_events_and_show_from_the_cli(
    server: Server, standin: SegmentStandIn, workdir: Path
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
        done = subprocess.run(
            [sys.executable, "-m", "dodo_transform", *args, "--server", server.url],
            env=server.env | {"COLUMNS": "250"},  # tables as wide as their words
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=30,
        )
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
    assert "payment.succeeded (msg_cli_view)" in detail
    assert "POST http" in detail and "attempt at" in detail and "HTTP 200" in detail


def test_each_reload_and_each_load_error_is_one_log_line(server: Server, workdir: Path) -> None:
    track = workdir / "transforms" / "segment_track_payments.js"
    server.wait_until(  # the worker has loaded the folder (the HTTP process logs no loads)
        lambda: "transform segment_track_payments loaded" in server.log.read_text(),
        what="the worker's first load",
    )
    mark = server.log.stat().st_size
    with server.reloading("segment_track_payments"):
        track.write_text(track.read_text().replace("Payment Completed", "Payment Made"))
    (workdir / "transforms" / "broken.js").write_text("function handler(w) {")
    server.wait_until(
        lambda: "broken.js" in server.log.read_bytes()[mark:].decode(), what="the load error"
    )
    time.sleep(1.5)  # the point: nothing more is logged for these changes as time passes
    logged = server.log.read_bytes()[mark:].decode()
    assert logged.count("transform segment_track_payments reloaded") == 1
    assert logged.count("transform broken failed to load") == 1


def test_a_transform_added_later_is_backfilled_from_the_cli(
    server: Server, standin: SegmentStandIn, workdir: Path
) -> None:
    server.post(example("payment.succeeded"), webhook_id="msg_before")
    standin.wait_for(2)
    server.wait_idle()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "dodo_transform", *args, "--server", server.url],
            env=server.env | {"COLUMNS": "250"},
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=60,
        )

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
    server: Server, standin: SegmentStandIn, workdir: Path
) -> None:
    server.post(example("payment.succeeded"), webhook_id="msg_stored")
    standin.wait_for(2)
    event_id = server.api("GET", "/api/events").json()[0]["id"]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dodo_transform",
            "test",
            "transforms/segment_track_payments.js",
            "--event-id",
            str(event_id),
            "--json",
            "--server",
            server.url,
        ],
        env=server.env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
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
        server.stop()
    lines = server.log.read_text().splitlines()
    (warning,) = [line for line in lines if "signature not verified" in line]
    assert " WARNING webhook refused" in warning and "DODO_WEBHOOK_SECRET" in warning
    assert not any(line.startswith("{") for line in lines)  # text, not JSON
    assert not any(" INFO " in line for line in lines)  # nothing below warning
