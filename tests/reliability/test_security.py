"""Security: outbound requests only to allowed hosts, the admin API guarded, secrets never shown,
nothing in the sandbox that reaches the host, and no web page in the operator's own browser
that reaches a tokenless service."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from dodo_transform.service import build_service
from dodo_transform.settings import load_settings
from dodo_transform.testing import (
    SECRET,
    WRITE_KEY,
    InProcess,
    InProcessServer,
    Reply,
    SegmentStandIn,
    in_process,
    server_settings,
)
from dodo_transform.transforms.engine import OutcomeKind, Transform
from tests.command_line import run as cli
from tests.conftest import EXAMPLES, event_from, sample
from tests.integration.conftest import example

pytestmark = pytest.mark.reliability

TARGETS = [
    "http://127.0.0.1:22/",
    "http://localhost:6379/",
    "http://[::1]:8080/",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.1.2.3/",
    "http://192.168.0.1/admin",
    "http://172.16.0.1/",
    "https://evil.example.com/collect",
    "http://0.0.0.0:8000/",
]


def test_handlers_cannot_reach_hosts_off_the_allowlist(
    server: InProcessServer, standin: SegmentStandIn, workdir: Path
) -> None:
    fan_out = ", ".join(f"Object.assign({{}}, w, {{url: {json.dumps(url)}}})" for url in TARGETS)
    with server.reloading("ssrf", "file"):
        (workdir / "transforms" / "ssrf.js").write_text(
            f"function handler(w) {{ return [{fan_out}]; }}"
        )
        (workdir / "transforms" / "file.js").write_text(
            "function handler(w) { w.url = 'file:///etc/passwd'; return w; }"
        )
    server.post(example("dispute.opened"))
    blocked = server.wait_until(
        lambda: len(server.deliveries("blocked")) == len(TARGETS) and server.deliveries("blocked"),
        what="every target blocked",
    )
    for delivery in blocked:
        detail = server.api("GET", f"/api/deliveries/{delivery['id']}").json()
        assert detail["attempt_log"] == []  # never sent
    failed = server.deliveries("failed")
    assert any(
        "file:///etc/passwd" in d["error"] and "not an absolute http(s) URL" in d["error"]
        for d in failed
    )
    assert standin.received == []


def test_redirects_are_never_followed(server: InProcessServer, standin: SegmentStandIn) -> None:
    standin.default = Reply(302, {"Location": "http://169.254.169.254/latest/meta-data/"})
    server.post(example("subscription.active"))
    dead = server.wait_until(lambda: server.deliveries("dead"), what="dead")
    assert "redirects are not followed" in dead[0]["error"]
    server.wait_idle()
    assert len(standin.received) == 1


def test_admin_api_refuses_callers_beyond_loopback_without_a_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DODO_TRANSFORM_ADMIN_TOKEN", raising=False)
    (tmp_path / "transforms").mkdir()
    settings = load_settings(
        transforms=tmp_path / "transforms",
        data_dir=tmp_path / "data",
        webhook_secret=SECRET,
        host="0.0.0.0",
    )
    service = build_service(settings)

    async def call(client_host: str) -> int:
        transport = httpx.ASGITransport(app=service.app, client=(client_host, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return (await client.get("/api/deliveries")).status_code

    try:
        assert asyncio.run(call("203.0.113.7")) == 403
        assert asyncio.run(call("10.0.0.8")) == 403
        assert asyncio.run(call("127.0.0.1")) == 200
    finally:
        service.store.close()
        service.intake.close()


def test_secrets_never_appear_in_logs_metrics_errors_api_or_cli(
    workdir: Path, standin: SegmentStandIn
) -> None:
    admin_token = "adm-7f1e9c-secret"
    settings = server_settings(standin, admin_token=admin_token)
    (workdir / "transforms" / "own_auth.js").write_text(
        "function handler(w) { if (w.eventType !== 'refund.succeeded') return w;"
        " w.url = 'https://api.segment.io/v1/track'; w.headers = {Authorization: 'Basic aGFuZGxlcktleTo='};"
        " w.payload = {userId: 'u', event: 'Order Refunded'}; return w; }"
    )
    auth = {"Authorization": f"Bearer {admin_token}"}
    outputs: list[str] = []
    with InProcessServer(workdir, **settings) as server:
        server.post(example("payment.succeeded"))
        server.post(example("refund.succeeded"))
        server.post(example("payment.succeeded"), secret="whsec_" + "QUJD" * 8)  # a refused one
        standin.wait_for(2)
        server.wait_idle()  # every outcome and attempt is recorded before we read them
        for path in (
            "/api/events",
            "/api/deliveries",
            "/api/transforms",
            "/api/events/1",
            "/api/deliveries/1",
            "/metrics",
            "/readyz",
            "/healthz",
        ):
            outputs.append(server.api("GET", path, headers=auth).text)
        # The CLI, with the service's settings in its environment as an operator's shell has.
        cli_env = {
            "DODO_TRANSFORM_PORT": str(server.port),
            "DODO_TRANSFORM_ADMIN_TOKEN": admin_token,
            "DODO_WEBHOOK_SECRET": SECRET,
            "SEGMENT_WRITE_KEY": WRITE_KEY,
        }
        for args in (
            ["deliveries"],
            ["deliveries", "--json"],
            ["replay", "999"],
            ["send", str(EXAMPLES / "events" / "refund.failed.json")],
            [
                "test",
                str(workdir / "transforms" / "own_auth.js"),
                str(EXAMPLES / "events" / "refund.succeeded.json"),
            ],
        ):
            done = cli(*args, cwd=workdir, env=cli_env)
            outputs += [done.stdout, done.stderr]
    outputs.append(server.log.read_text())
    basic = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    for secret in (
        SECRET,
        SECRET.removeprefix("whsec_"),
        WRITE_KEY,
        basic,
        admin_token,
        "aGFuZGxlcktleTo=",
    ):
        for text in outputs:
            assert secret not in text, f"{secret[:6]}... leaked"


SANDBOX_PROBES = [
    "typeof require",
    "typeof process",
    "typeof fetch",
    "typeof XMLHttpRequest",
    "typeof setTimeout",
    "typeof std",
    "typeof os",
    "typeof Deno",
    "typeof Bun",
    "typeof import_meta",
    "typeof print",
    "typeof scriptArgs",
    "typeof WebAssembly",
]


@pytest.mark.parametrize("probe", SANDBOX_PROBES)
def test_nothing_in_the_sandbox_reaches_the_host(probe: str) -> None:
    source = (
        f"function handler(w) {{ w.url = 'https://hooks.example.com/'; "
        f"w.payload = {{seen: String({probe})}}; return w; }}"
    )
    outcome = Transform(name="probe", source=source, filename="probe.js").run(
        event_from(sample("payment.succeeded"))
    )
    assert outcome.kind is OutcomeKind.DELIVER
    assert outcome.requests[0].payload["seen"] in ("undefined", "false")


def test_the_global_object_holds_only_standard_javascript() -> None:
    source = (
        "function handler(w) { w.url = 'https://hooks.example.com/';"
        " w.payload = {names: Object.getOwnPropertyNames(globalThis).sort()}; return w; }"
    )
    outcome = Transform(name="g", source=source, filename="g.js").run(
        event_from(sample("payment.succeeded"))
    )
    names = set(outcome.requests[0].payload["names"])
    ours = {"console"}  # the host's entry points are no globals (see test_sandbox_isolation)
    unexpected = {n for n in names - ours if not n[0].isupper()} - {
        "globalThis",
        "parseInt",
        "parseFloat",
        "isNaN",
        "isFinite",
        "decodeURI",
        "decodeURIComponent",
        "encodeURI",
        "encodeURIComponent",
        "escape",
        "unescape",
        "eval",
        "undefined",
        "NaN",
        "Infinity",
        "queueMicrotask",
        "atob",
        "btoa",
        "structuredClone",  # web platform globals that connector snippets written for V8 use
        "performance",
    }
    assert unexpected == set(), unexpected


def test_dynamic_import_and_eval_stay_inside() -> None:
    source = (
        "function handler(w) { let r = 'none';"
        " try { r = String(new Function('return typeof process')()); } catch (e) { r = 'threw'; }"
        " w.url = 'https://hooks.example.com/'; w.payload = {r: r}; return w; }"
    )
    outcome = Transform(name="e", source=source, filename="e.js").run(
        event_from(sample("payment.succeeded"))
    )
    assert outcome.requests[0].payload == {"r": "undefined"}
    importing = Transform(
        name="i", source="function handler(w) { import('fs'); return w; }", filename="i.js"
    ).run(event_from(sample("payment.succeeded")))
    assert importing.kind in (OutcomeKind.ERROR, OutcomeKind.SKIPPED)


# --- a web page in the operator's browser, against a service without a token -------------------

IDENTIFY = (
    "function handler(w) {\n  w.url = 'https://api.segment.io/v1/identify';\n"
    "  w.payload = {userId: w.payload.data.customer.customer_id,"
    " traits: {email: w.payload.data.customer.email}};\n  return w;\n}\n"
)
ATTACKER = "https://attacker.example"


def tokenless(tmp_path: Path, test: Callable[[InProcess], Awaitable[None]]) -> None:
    """`test` against a whole service with no admin token, as `docs/going-live.md` runs it
    behind an SSH tunnel, reached at http://127.0.0.1:8000; one event stored and delivered in
    dry run by the transform `identify`."""
    folder = tmp_path / "transforms"
    folder.mkdir()
    (folder / "identify.js").write_text(IDENTIFY)
    settings = load_settings(
        transforms=folder, data_dir=tmp_path / "data", webhook_secret=SECRET, worker_process=False
    )
    assert settings.admin_token is None

    async def main() -> None:
        async with in_process(settings, base_url="http://127.0.0.1:8000") as (service, client):
            relay = InProcess(service, client, folder)
            await relay.send_webhook("msg_ada", sample("payment.succeeded"))
            await relay.until(lambda: relay.deliveries("dry_run"))
            await test(relay)

    asyncio.run(main())


def test_a_rebinding_page_reads_no_event_and_changes_nothing(tmp_path: Path) -> None:
    """A page on attacker.example, its name re-pointed at 127.0.0.1, names its own Host."""

    async def test(relay: InProcess) -> None:
        rebound = {"Host": "attacker.example:8000"}
        read = await relay.client.get("/api/events/1", headers=rebound)
        assert read.status_code == 403 and "ada@example.com" not in read.text
        for path in ("/api/replay?status=dry_run", "/api/backfills?transform=identify"):
            assert (await relay.client.post(path, headers=rebound)).status_code == 403
        await nothing_changed(relay)

    tokenless(tmp_path, test)


def test_a_cross_site_post_without_a_body_changes_nothing(tmp_path: Path) -> None:
    """No preflight is needed for a bodiless POST: the browser sends it, with its Origin."""

    async def test(relay: InProcess) -> None:
        for sender in ({"Origin": ATTACKER}, {"Referer": f"{ATTACKER}/"}):
            for path in ("/api/replay?status=dry_run", "/api/backfills?transform=identify"):
                answer = await relay.client.post(path, headers=sender)
                assert answer.status_code == 403, (path, sender, answer.text)
        await nothing_changed(relay)
        # The CLI, which names no page, still asks for the same.
        assert (await relay.client.post("/api/replay?status=dry_run")).status_code == 200

    tokenless(tmp_path, test)


async def nothing_changed(relay: InProcess) -> None:
    store = relay.service.store
    (delivery,) = await relay.deliveries("dry_run")
    assert await asyncio.to_thread(store.get_replay, delivery["id"]) is None
    assert await asyncio.to_thread(store.list_backfills) == []


@pytest.mark.parametrize("host", ["127.attacker.example:8000", "127.0.0.1.nip.io:8000"])
def test_a_page_on_a_name_starting_127_cannot_save_handler_code(tmp_path: Path, host: str) -> None:
    """Such a page reads no form (so no CSRF token), and the double-submit pair it makes up
    itself (its own cookie on its own name, and the same value in the form) is refused too."""

    async def test(relay: InProcess) -> None:
        file = relay.folder / "identify.js"
        page = await relay.client.get("/transforms/identify", headers={"Host": host})
        assert page.status_code == 403 and 'name="csrf"' not in page.text
        forged = "A" * 43
        saved = await relay.client.post(
            "/transforms/identify/save",
            data={"source": "function handler(w) { return w; }", "csrf": forged},
            headers={
                "Host": host,
                "Origin": f"http://{host}",
                "Cookie": f"dodo_console_csrf={forged}",
            },
        )
        assert saved.status_code == 403
        assert file.read_text() == IDENTIFY

    tokenless(tmp_path, test)
