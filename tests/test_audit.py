"""The audit trail (web/audit.py): every save, restore, replay, bulk replay, backfill, erasure
and login is recorded with when, what and who, never event contents; shown at /audit and
/api/audit."""

from __future__ import annotations

import asyncio
import hashlib
import re
from pathlib import Path

import httpx
from fastapi import Request

from dodo_transform.web import audit
from dodo_transform.web.console import session
from tests.conftest import sample
from tests.test_console import DOCS_HANDLER, GOOD, Console, client_at, log_in, run_console

TOKEN = "s3cret-token"
CUSTOMER = "cus_AuditedCustomer"
EMAIL = "audited@example.com"


def test_every_change_is_recorded_with_who_made_it_and_no_event_contents(tmp_path: Path) -> None:
    async def test(console: Console) -> None:
        assert (await log_in(console.client, "wrong")).status_code == 200
        assert (await log_in(console.client, TOKEN)).status_code == 303
        cookie = console.client.cookies[session.SESSION_COOKIE]
        csrf = console.client.cookies[session.CSRF_COOKIE]
        first = console.service.registry.current()[DOCS_HANDLER].version
        await console.until(lambda: _kept(console, first))
        saved = await console.client.post(
            f"/transforms/{DOCS_HANDLER}/save", data={"source": GOOD, "csrf": csrf}
        )
        assert saved.status_code == 303  # post/redirect/get
        restored = await console.client.post(
            f"/transforms/{DOCS_HANDLER}/restore", data={"version": first, "csrf": csrf}
        )
        assert restored.status_code == 303, restored.text
        body = sample("payment.succeeded")
        body["data"]["customer"] |= {"customer_id": CUSTOMER, "email": EMAIL}
        await console.send_webhook("msg_audited", body)
        async with client_at(console, "127.0.0.1") as api:
            api.headers["Authorization"] = f"Bearer {TOKEN}"
            await run_the_api(console, api)
            trail = (await api.get("/api/audit")).json()
        actions = [entry["action"] for entry in reversed(trail)]
        assert actions == [
            "login failed",
            "login",
            "save",
            "restore",
            "replay",
            "bulk replay",
            "bulk replay cancelled",
            "backfill",
            "erasure",
        ]
        by_action = {entry["action"]: entry for entry in trail}
        session_hash = by_action["login"]["actor"].split()[2]
        assert by_action["login"]["actor"] == f"console session {session_hash} from 127.0.0.1"
        assert by_action["save"]["actor"] == by_action["login"]["actor"]
        assert cookie not in str(trail) and TOKEN not in str(trail)
        assert by_action["save"]["subject"] == f"transform {DOCS_HANDLER}"
        assert "live as version" in by_action["save"]["detail"]
        assert by_action["restore"]["detail"].startswith(f"version {first} restored")
        assert by_action["replay"]["actor"] == "admin API (token) from 127.0.0.1"
        assert "q=(withheld)" in by_action["bulk replay"]["detail"]
        assert by_action["erasure"]["detail"].startswith("1 events, ")
        assert by_action["erasure"]["detail"].endswith("who: (withheld)")
        # Never event contents: not the customer's id or email, in any entry.
        assert CUSTOMER not in str(trail) and EMAIL not in str(trail)
        page = await console.get("/audit")
        assert page.status_code == 200
        assert len(re.findall(r'data-testid="audit-row"', page.text)) == len(trail)

    run_console(tmp_path, test, admin_token=TOKEN)


async def _kept(console: Console, version: str) -> bool:
    store = console.service.store
    return await asyncio.to_thread(store.get_version, DOCS_HANDLER, version) is not None


async def run_the_api(console: Console, api: httpx.AsyncClient) -> None:
    async def dry_runs() -> list[dict[str, object]]:
        found: list[dict[str, object]] = (
            await api.get("/api/deliveries", params={"status": "dry_run"})
        ).json()
        return found

    (made, *_) = await console.until(dry_runs)
    assert (await api.post(f"/api/deliveries/{made['id']}/replay")).status_code in (200, 202)
    started = await api.post("/api/replays", params={"q": CUSTOMER, "status": "dry_run"})
    assert started.status_code == 201, started.text
    bulk = started.json()
    cancelled = await api.post(f"/api/replays/{bulk['id']}/cancel")
    if cancelled.status_code == 409:  # it had finished: cancel a fresh one that has not
        bulk = (await api.post("/api/replays", params={"status": "dead"})).json()
        cancelled = await api.post(f"/api/replays/{bulk['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    backfill = await api.post("/api/backfills", params={"transform": DOCS_HANDLER})
    assert backfill.status_code == 201, backfill.text
    erased = await api.post("/api/erasures", params={"customer": EMAIL})
    assert erased.status_code == 200, erased.text


def test_a_search_in_a_bulk_replays_filters_is_withheld() -> None:
    shown = audit.shown_filters({"q": EMAIL, "status": "dead"})
    assert shown == "q=(withheld) status=dead"


def test_the_actor_is_the_api_or_a_session_hash_never_the_cookie() -> None:
    def request(path: str, headers: list[tuple[bytes, bytes]]) -> Request:
        scope = {"type": "http", "path": path, "headers": headers, "client": ("10.0.0.7", 1)}
        return Request(scope)

    assert audit.actor(request("/api/x", [])) == "admin API from 10.0.0.7"
    bearer = [(b"authorization", b"Bearer t")]
    assert audit.actor(request("/api/x", bearer)) == "admin API (token) from 10.0.0.7"
    cookie = [(b"cookie", f"{session.SESSION_COOKIE}=abc".encode())]
    hashed = hashlib.sha256(b"abc").hexdigest()[:12]
    assert audit.actor(request("/deliveries", cookie)) == f"console session {hashed} from 10.0.0.7"
