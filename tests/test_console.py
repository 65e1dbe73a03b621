"""The web console's routes over a whole in-process service (real store, real QuickJS in the
console's sandbox process, Segment at the httpx seam): pages, test runs, saves, replays,
login and CSRF. The same flows in a real browser are in tests/browser/."""

from __future__ import annotations

import asyncio
import html
import json
import re
import shutil
import threading
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import HTTPException

from dodo_transform.settings import load_settings
from dodo_transform.store import Heartbeat, TransformVersion
from dodo_transform.testing import SECRET, InProcess, in_process
from dodo_transform.transforms.engine import Transform
from dodo_transform.web.console import files, history, login, samples, session
from dodo_transform.web.console.runs import Runs
from tests.conftest import SHIPPED, sample

DOCS_HANDLER = "segment_track_payments"
GOOD = (
    "function handler(w) {\n  w.url = 'https://api.segment.io/v1/track';\n"
    "  w.payload = {userId: w.payload.data.customer.customer_id, event: 'Payment Completed'};\n"
    "  return w;\n}\n"
)
THROWS = "function handler(w) {\n  const x = undefined;\n  return x.y;\n}\n"
SYNTAX_ERROR = "function handler(w) {\n  return w\n  }}\n"
BASE_URL = "http://127.0.0.1:8000"


class Console(InProcess):
    """A browser's view of the console: pages as text, forms posted with the CSRF token."""

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.get(path, headers={"Accept": "text/html"}, **kwargs)

    async def csrf(self) -> str:
        page = await self.get("/transforms")
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        token = found.group(1) if found else self.client.cookies.get(session.CSRF_COOKIE)
        assert token, page.text
        return token

    async def post(
        self, path: str, data: dict[str, str], *, fragment: bool = True, **kwargs: Any
    ) -> httpx.Response:
        headers = {"Accept": "text/html"} | ({"X-Console-Fragment": "1"} if fragment else {})
        form = {"csrf": await self.csrf()} | data
        return await self.client.post(path, data=form, headers=headers, **kwargs)

    async def send_webhook(self, webhook_id: str, body: Mapping[str, Any] | None = None) -> None:
        await super().send_webhook(webhook_id, body or sample("payment.succeeded"))


def run_console(
    tmp_path: Path,
    test: Callable[[Console], Awaitable[None]],
    *,
    base_url: str = BASE_URL,
    **settings: Any,
) -> None:
    folder = tmp_path / "transforms"
    shutil.copytree(SHIPPED, folder, dirs_exist_ok=True)
    config = load_settings(
        transforms=folder,
        data_dir=tmp_path / "data",
        webhook_secret=SECRET,
        worker_process=False,
        **settings,
    )
    segment = httpx.MockTransport(lambda request: httpx.Response(200))

    async def main() -> None:
        async with in_process(config, transport=segment, base_url=base_url) as (service, client):
            await test(Console(service, client, folder))

    asyncio.run(main())


def test_every_page_answers_with_a_strict_content_security_policy(tmp_path: Path) -> None:
    async def test(console: Console) -> None:
        await console.send_webhook("msg_pages")
        made, *_ = await console.until(lambda: console.deliveries("dry_run"))
        for path in (
            "/",
            "/transforms",
            f"/transforms/{DOCS_HANDLER}",
            "/deliveries",
            f"/deliveries/{made['id']}",
            f"/events/{made['event_id']}",
        ):
            page = await console.get(path)
            assert page.status_code == 200, (path, page.text)
            policy = page.headers["content-security-policy"]
            assert "script-src 'self'" in policy and "default-src 'none'" in policy
            assert "unsafe-inline" not in policy
            assert "<script>" not in page.text and " on" + "click=" not in page.text
            assert re.findall(r'(?:src|href)="(https?:)?//', page.text) == [], path

    run_console(tmp_path, test)


def test_the_transforms_page_lists_each_transform_with_its_state(tmp_path: Path) -> None:
    async def test(console: Console) -> None:
        (console.folder / "broken.js").write_text(SYNTAX_ERROR)
        await asyncio.to_thread(console.service.registry.reload)
        page = await console.get("/transforms")
        rows = re.findall(r'<tr data-testid="transform-row">(.*?)</tr>', page.text, re.S)
        assert len(rows) == 4
        by_name = {re.search(r'href="/transforms/([^"]+)"', row).group(1): row for row in rows}  # type: ignore[union-attr]
        assert set(by_name) == {
            "broken",
            "segment_identify_customer",
            "segment_subscription_lifecycle",
            DOCS_HANDLER,
        }
        assert ">live<" in by_name[DOCS_HANDLER]
        assert ">broken<" in by_name["broken"] and "SyntaxError" in by_name["broken"]

    run_console(tmp_path, test)


def test_disabled_and_quarantined_transforms_say_so(tmp_path: Path) -> None:
    async def test(console: Console) -> None:
        (console.folder / "transforms.toml").write_text(
            "[segment_identify_customer]\nenabled = false\n"
        )
        (console.folder / "loops.js").write_text("function handler(w) { while (true) {} }")
        await asyncio.to_thread(console.service.registry.reload)
        # The page knows of a quarantine from the stored outcomes: send until one says so.
        for n in range(8):
            await console.send_webhook(f"msg_q{n}")
            await console.until(lambda n=n: _count(console, "failed", n + 1))
            failed = await console.deliveries("failed")
            if any((d["error"] or "").startswith("quarantined:") for d in failed):
                break
        page = await console.get("/transforms")
        rows = dict(
            re.findall(
                r'href="/transforms/([^"]+)".*?data-testid="transform-state">(\w+)<',
                page.text,
                re.S,
            )
        )
        assert rows["segment_identify_customer"] == "disabled"
        assert rows["loops"] == "quarantined"
        assert rows[DOCS_HANDLER] == "live"
        overview = await console.get("/")
        assert 'href="/transforms/loops"' in overview.text

    run_console(tmp_path, test, handler_time_limit=0.1)


def test_the_sample_chooser_offers_every_example_recent_events_and_a_custom_body(
    tmp_path: Path,
) -> None:
    async def test(console: Console) -> None:
        await console.send_webhook("msg_sample")
        page = await console.get(f"/transforms/{DOCS_HANDLER}")
        chooser = re.search(r'<select name="sample".*?</select>', page.text, re.S)
        assert chooser is not None
        labels = re.findall(r'<option value="example:[^"]+"[^>]*>([^<]+)</option>', chooser[0])
        assert len(labels) == 47 and labels == sorted(labels)
        assert "payment.succeeded" in labels and "dispute.opened" in labels
        assert 'value="event:1"' in chooser[0] and "msg_sample" in chooser[0]
        assert 'value="custom"' in chooser[0]

    run_console(tmp_path, test)


def test_a_test_run_of_the_docs_handler_shows_the_request_it_would_send(tmp_path: Path) -> None:
    async def test(console: Console) -> None:
        source = (console.folder / f"{DOCS_HANDLER}.js").read_text()
        answer = await console.post(
            f"/transforms/{DOCS_HANDLER}/test",
            {"source": source, "sample": "example:payment.succeeded"},
        )
        assert answer.status_code == 200, answer.text
        assert 'data-testid="outcome">deliver<' in answer.text
        assert "POST https://api.segment.io/v1/track" in answer.text
        assert "Payment Completed" in answer.text
        assert 'class="add"' in answer.text and 'class="remove"' in answer.text  # the diff
        skipped = await console.post(
            f"/transforms/{DOCS_HANDLER}/test",
            {"source": source, "sample": "example:dispute.opened"},
        )
        assert 'data-testid="outcome">skipped<' in skipped.text

    run_console(tmp_path, test)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (THROWS, r"TypeError.*segment_track_payments\.js:3:\d+|segment_track_payments\.js:3:\d+"),
        (SYNTAX_ERROR, r"SyntaxError"),
        ("function handler(w) { while (true) {} }", r"time limit"),
        ("function handler(w) { console.log('hi', w.eventType); return w; }", r"hi payment"),
    ],
)
def test_a_test_run_reports_errors_limits_and_console_output(
    tmp_path: Path, source: str, expected: str
) -> None:
    async def test(console: Console) -> None:
        answer = await console.post(
            f"/transforms/{DOCS_HANDLER}/test",
            {"source": source, "sample": "example:payment.succeeded"},
        )
        assert answer.status_code == 200, answer.text
        assert re.search(expected, answer.text), answer.text
        assert (await console.client.get("/healthz")).status_code == 200

    run_console(tmp_path, test)


def test_a_test_run_of_a_file_that_ends_too_soon_goes_to_its_last_line(tmp_path: Path) -> None:
    unclosed = GOOD.removesuffix("}\n")  # four lines, the last "  return w;"

    async def test(console: Console) -> None:
        answer = await console.post(
            f"/transforms/{DOCS_HANDLER}/test",
            {"source": unclosed, "sample": "example:payment.succeeded"},
        )
        assert (
            f"{DOCS_HANDLER}.js:4:12 SyntaxError: unexpected end of file: "
            "a `{` is not closed (a `}` is missing)"
        ) in answer.text
        assert 'data-line="4" data-column="12">Go to line 4:12<' in answer.text

    run_console(tmp_path, test)


def test_a_test_run_takes_a_custom_body_and_says_what_is_wrong_with_a_bad_one(
    tmp_path: Path,
) -> None:
    async def test(console: Console) -> None:
        body = json.dumps(sample("payment.succeeded") | {"business_id": "biz_custom"})
        ok = await console.post(
            f"/transforms/{DOCS_HANDLER}/test",
            {"source": GOOD, "sample": "custom", "custom": body},
        )
        assert 'data-testid="outcome">deliver<' in ok.text
        bad = await console.post(
            f"/transforms/{DOCS_HANDLER}/test",
            {"source": GOOD, "sample": "custom", "custom": "[1, 2]"},
        )
        assert "the custom body: body is not a JSON object" in bad.text

    run_console(tmp_path, test)


def test_a_broken_save_keeps_the_last_good_version_and_a_good_one_goes_live(
    tmp_path: Path,
) -> None:
    async def test(console: Console) -> None:
        registry = console.service.registry
        path = console.folder / f"{DOCS_HANDLER}.js"
        path.chmod(0o640)
        before = registry.current()[DOCS_HANDLER].version
        broken = await console.post(f"/transforms/{DOCS_HANDLER}/save", {"source": SYNTAX_ERROR})
        assert broken.status_code == 200
        assert "SyntaxError" in broken.text and f"<code>{before}</code>, stays in service" in (
            broken.text
        )
        assert path.read_text() == SYNTAX_ERROR  # the file is the source of truth
        assert registry.current()[DOCS_HANDLER].version == before
        good = await console.post(
            f"/transforms/{DOCS_HANDLER}/save", {"source": GOOD.replace("\n", "\r\n")}
        )
        assert 'data-state="live"' in good.text
        assert path.read_text() == GOOD and path.stat().st_mode & 0o777 == 0o640
        assert registry.current()[DOCS_HANDLER].version != before
        assert registry.current()[DOCS_HANDLER].version in good.text
        assert [p.name for p in console.folder.iterdir() if p.name.startswith(".")] == []

    run_console(tmp_path, test)


def test_a_save_that_cannot_write_the_file_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(*args: Any, **kwargs: Any) -> Any:
        raise OSError(28, "No space left on device")

    async def test(console: Console) -> None:
        monkeypatch.setattr(files.tempfile, "mkstemp", full_disk)
        answer = await console.post(f"/transforms/{DOCS_HANDLER}/save", {"source": GOOD})
        assert answer.status_code == 200
        assert "could not be written" in answer.text and "No space left" in answer.text
        assert "Payment Completed" in (console.folder / f"{DOCS_HANDLER}.js").read_text()

    run_console(tmp_path, test)


def test_a_failed_delivery_is_replayed_from_its_page(tmp_path: Path) -> None:
    async def test(console: Console) -> None:
        path = console.folder / f"{DOCS_HANDLER}.js"
        path.write_text(THROWS)
        await asyncio.to_thread(console.service.registry.reload)
        await console.send_webhook("msg_fix_me")
        (failed,) = await console.until(lambda: console.deliveries("failed"))
        page = await console.get(f"/deliveries/{failed['id']}")
        assert 'data-testid="replay"' in page.text and "TypeError" in page.text
        await console.post(f"/transforms/{DOCS_HANDLER}/save", {"source": GOOD})
        answer = await console.post(f"/deliveries/{failed['id']}/replay", {}, fragment=False)
        assert answer.status_code == 303 and answer.headers["location"] == (
            f"/deliveries/{failed['id']}"
        )

        async def replayed_and_sent() -> str:
            page = await console.get(f"/deliveries/{failed['id']}")
            result = re.search(r'data-testid="replay-result".*?</div>', page.text, re.S)
            return result[0] if result and 'data-testid="status">delivered<' in result[0] else ""

        assert "Replayed with the transform's current version" in await console.until(
            replayed_and_sent
        )
        again = await console.post(f"/deliveries/{failed['id']}/replay", {}, fragment=False)
        assert again.status_code == 409 and "only failed or dead" in again.text

    run_console(tmp_path, test, segment_write_key="wk_test")


def test_an_impact_preview_counts_what_an_edit_would_change_on_stored_events(
    tmp_path: Path,
) -> None:
    async def test(console: Console) -> None:
        await console.send_webhook("msg_paid")
        refund = sample("refund.succeeded")
        await console.send_webhook("msg_refund", refund)
        current = (console.folder / f"{DOCS_HANDLER}.js").read_text()
        same = await console.post(f"/transforms/{DOCS_HANDLER}/impact", {"source": current})
        assert same.status_code == 200, same.text
        assert 'data-testid="impact-same">2<' in same.text
        assert 'data-testid="impact-changed">0<' in same.text
        renamed = current.replace("Payment Completed", "Payment Renamed")
        changed = await console.post(f"/transforms/{DOCS_HANDLER}/impact", {"source": renamed})
        assert 'data-testid="impact-same">1<' in changed.text  # the refund stays skipped
        assert 'data-testid="impact-changed">1<' in changed.text
        assert 'data-testid="impact-failing">0<' in changed.text
        assert "Payment Renamed" in changed.text and "msg_paid" in changed.text
        failing = await console.post(f"/transforms/{DOCS_HANDLER}/impact", {"source": THROWS})
        assert 'data-testid="impact-failing">2<' in failing.text
        assert (console.folder / f"{DOCS_HANDLER}.js").read_text() == current  # nothing saved

    run_console(tmp_path, test)


def test_an_impact_preview_of_a_looping_handler_stops_early(tmp_path: Path) -> None:
    async def test(console: Console) -> None:
        for n in range(12):
            await console.send_webhook(f"msg_loop_{n}")
        looping = "function handler(w) { while (true) {} }"
        answer = await console.post(f"/transforms/{DOCS_HANDLER}/impact", {"source": looping})
        assert answer.status_code == 200, answer.text
        assert "Stopped early: the edited code hit its resource limits on 10 events" in answer.text

    run_console(tmp_path, test, handler_time_limit=0.1)


def test_console_runs_past_the_limit_are_refused_at_once_and_held_until_their_thread_ends() -> None:
    async def scenario() -> None:
        runs = Runs(limit=2)
        gate = threading.Event()
        first = asyncio.create_task(runs.run(gate.wait, 10))
        second = asyncio.create_task(runs.run(gate.wait, 10))
        await asyncio.sleep(0.05)
        with pytest.raises(HTTPException) as refused:
            await runs.run(lambda: 1)
        assert refused.value.status_code == 429 and refused.value.headers == {"Retry-After": "5"}
        assert "busy, try again" in refused.value.detail
        first.cancel()  # its request went away, but its thread still runs
        await asyncio.sleep(0.05)
        assert runs.running == 2
        gate.set()
        assert await second is True
        await asyncio.sleep(0.05)
        assert runs.running == 0
        assert await runs.run(lambda: 7) == 7

    asyncio.run(scenario())


def test_deliveries_are_filtered_by_status_transform_type_and_search(tmp_path: Path) -> None:
    async def test(console: Console) -> None:
        await console.send_webhook("msg_one")
        other = sample("payment.succeeded")
        other["data"]["customer"]["customer_id"] = "cus_findme"
        await console.send_webhook("msg_two", other)
        await console.until(lambda: _count(console, "dry_run", 4))

        async def rows(**query: str) -> list[str]:
            page = await console.get("/deliveries", params=query)
            assert page.status_code == 200, page.text
            return re.findall(r'data-testid="delivery-row" data-id="(\d+)"', page.text)

        everything = await rows()
        assert len(everything) == 6  # three transforms, two events
        assert everything == sorted(everything, key=int, reverse=True)
        assert len(await rows(status="dry_run")) == 4  # identify and track; lifecycle skips
        assert len(await rows(transform=DOCS_HANDLER)) == 2
        assert len(await rows(event_type="payment.succeeded", range="1h")) == 6
        assert len(await rows(event_type="refund.succeeded")) == 0
        assert len(await rows(q="msg_two")) == 3
        assert len(await rows(q="cus_findme")) == 3
        assert (await console.get("/deliveries", params={"status": "nope"})).status_code == 400

    run_console(tmp_path, test)


def test_an_empty_console_says_how_to_send_a_first_webhook(tmp_path: Path) -> None:
    async def test(console: Console) -> None:
        page = await console.get("/deliveries")
        assert "No deliveries yet" in page.text and "dodo-transform send" in page.text
        overview = await console.get("/")
        assert 'data-testid="dry-run-banner"' in overview.text

    run_console(tmp_path, test)


@pytest.mark.parametrize(
    "path",
    [
        "/transforms/nope",
        "/transforms/..%2Fsecret",
        "/deliveries/9",
        "/events/99999999999999999999",
    ],
)
def test_unknown_things_answer_404_pages(tmp_path: Path, path: str) -> None:
    async def test(console: Console) -> None:
        page = await console.get(path)
        assert page.status_code in (404, 422), page.text
        api = await console.client.get("/api/deliveries/9")
        assert api.headers["content-type"] == "application/json"

    run_console(tmp_path, test)


def test_state_changing_forms_need_the_csrf_token_and_the_same_origin(tmp_path: Path) -> None:
    async def test(console: Console) -> None:
        path = console.folder / f"{DOCS_HANDLER}.js"
        before = path.read_text()
        save = f"/transforms/{DOCS_HANDLER}/save"
        token = await console.csrf()
        missing = await console.client.post(save, data={"source": GOOD})
        assert missing.status_code == 403
        wrong = await console.client.post(save, data={"source": GOOD, "csrf": "x" * 43})
        assert wrong.status_code == 403
        cross = await console.client.post(
            save,
            data={"source": GOOD, "csrf": token},
            headers={"Origin": "http://evil.example"},
        )
        assert cross.status_code == 403
        assert path.read_text() == before
        same = await console.client.post(
            save, data={"source": GOOD, "csrf": token}, headers={"Origin": BASE_URL}
        )
        assert same.status_code == 303  # saved, then shown by a GET (post/redirect/get)
        assert path.read_text() == GOOD

    run_console(tmp_path, test)


def test_with_a_token_the_console_asks_for_it_and_keeps_a_strict_session(tmp_path: Path) -> None:
    async def test(console: Console) -> None:
        first = await console.get("/deliveries?status=failed")
        assert first.status_code == 303
        assert first.headers["location"] == "/login?next=/deliveries%3Fstatus%3Dfailed"
        login = await console.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', login.text).group(1)  # type: ignore[union-attr]
        refused = await console.client.post(
            "/login", data={"csrf": token, "token": "wrong", "next": "/"}
        )
        assert refused.status_code == 200 and "not the admin token" in refused.text
        accepted = await console.client.post(
            "/login", data={"csrf": token, "token": "s3cret-token", "next": "//evil.example"}
        )
        assert accepted.status_code == 303 and accepted.headers["location"] == "/"
        cookie = accepted.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert (await console.get("/deliveries")).status_code == 200
        console.client.cookies.delete(session.SESSION_COOKIE)
        assert (await console.get("/transforms")).status_code == 303
        bearer = await console.client.get(
            "/transforms", headers={"Authorization": "Bearer s3cret-token"}
        )
        assert bearer.status_code == 200

    run_console(tmp_path, test, admin_token="s3cret-token")


def test_a_session_key_hides_the_cookie_and_changes_with_the_token() -> None:
    key = session.session_key("token-a", "id-1")
    assert key == session.session_key("token-a", "id-1")
    assert key != session.session_key("token-b", "id-1") != session.session_key("token-a", "id-2")
    assert "id-1" not in key and "token-a" not in key
    assert session.safe_next("/deliveries?x=1") == "/deliveries?x=1"
    for target in ("//evil.example", "https://evil.example", "/\\evil", ""):
        assert session.safe_next(target) == "/"


@pytest.mark.parametrize(
    "host", ["attacker.example", "127.attacker.example", "127.0.0.1.nip.io:8000", "localhost.evil"]
)
def test_without_a_token_only_loopback_host_names_are_served(tmp_path: Path, host: str) -> None:
    async def test(console: Console) -> None:
        rebound = await console.client.get("/", headers={"Host": host})
        assert rebound.status_code == 403
        assert "not a loopback name" in rebound.json()["detail"]
        for loopback in ("localhost:8000", "127.0.0.1", "127.1.2.3:8000", "[::1]:8000"):
            assert (await console.client.get("/", headers={"Host": loopback})).status_code == 200

    run_console(tmp_path, test)


# --- sessions and logins ----------------------------------------------------------------------


def client_at(console: Console, address: str, base_url: str = BASE_URL) -> httpx.AsyncClient:
    """Another browser, at `address`, on the same service."""
    transport = httpx.ASGITransport(app=console.service.app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url=base_url)


async def log_in(client: httpx.AsyncClient, token: str) -> httpx.Response:
    """The login page's form, posted as the page would."""
    form = await client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf is not None, form.text
    return await client.post("/login", data={"csrf": csrf.group(1), "token": token, "next": "/"})


def test_logging_out_ends_the_session_for_every_copy_of_its_cookie(tmp_path: Path) -> None:
    async def test(console: Console) -> None:
        assert (await log_in(console.client, "s3cret-token")).status_code == 303
        copied = console.client.cookies[session.SESSION_COOKIE]
        async with client_at(console, "127.0.0.1") as thief:
            thief.cookies.set(session.SESSION_COOKIE, copied)
            assert (await thief.get("/deliveries")).status_code == 200
            csrf = console.client.cookies[session.CSRF_COOKIE]
            out = await console.client.post("/logout", data={"csrf": csrf})
            assert out.status_code == 303 and out.headers["location"] == "/login"
            refused = await thief.get("/deliveries")
            assert refused.status_code == 303 and refused.headers["location"].startswith("/login")

    run_console(tmp_path, test, admin_token="s3cret-token")


def test_a_new_admin_token_ends_every_session(tmp_path: Path) -> None:
    kept: dict[str, str] = {}

    async def first(console: Console) -> None:
        assert (await log_in(console.client, "token-before")).status_code == 303
        kept["cookie"] = console.client.cookies[session.SESSION_COOKIE]

    async def after_rotation(console: Console) -> None:
        console.client.cookies.set(session.SESSION_COOKIE, kept["cookie"])
        assert (await console.get("/deliveries")).status_code == 303
        assert (await log_in(console.client, "token-after")).status_code == 303
        assert (await console.get("/deliveries")).status_code == 200

    run_console(tmp_path, first, admin_token="token-before")
    run_console(tmp_path, after_rotation, admin_token="token-after")


def test_login_attempts_are_limited_per_client_address(tmp_path: Path) -> None:
    async def test(console: Console) -> None:
        async with client_at(console, "203.0.113.7", "https://relay") as guesser:
            for _ in range(login.LOGIN_ATTEMPTS):
                assert (await log_in(guesser, "wrong")).status_code == 200
            limited = await log_in(guesser, "wrong")
            assert limited.status_code == 429
            assert 0 < int(limited.headers["retry-after"]) <= login.LOGIN_WINDOW_SECONDS
            assert "too many login attempts" in limited.json()["detail"]
            # Even the right token now: an answer that differed would tell the guess was right.
            assert (await log_in(guesser, "s3cret-token")).status_code == 429
        async with client_at(console, "198.51.100.2", "https://relay") as other:
            assert (await log_in(other, "s3cret-token")).status_code == 303

    run_console(tmp_path, test, admin_token="s3cret-token")


def test_login_attempts_sent_at_once_get_no_more_comparisons(tmp_path: Path) -> None:
    async def test(console: Console) -> None:
        async with client_at(console, "203.0.113.9", "https://relay") as guesser:
            form = await guesser.get("/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
            data = {"csrf": csrf, "token": "wrong", "next": "/"}
            answers = await asyncio.gather(*(guesser.post("/login", data=data) for _ in range(12)))
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [200] * login.LOGIN_ATTEMPTS + [429] * (12 - login.LOGIN_ATTEMPTS)

    run_console(tmp_path, test, admin_token="s3cret-token")


def test_the_console_logs_in_over_plain_http_only_from_this_machine(tmp_path: Path) -> None:
    async def test(console: Console) -> None:
        async with client_at(console, "203.0.113.7", "http://relay.example") as remote:
            page = await remote.get("/login", headers={"Accept": "text/html"})
            assert page.status_code == 403 and "log in over https" in page.text
            posted = await remote.post("/login", data={"token": "s3cret-token"})
            assert posted.status_code == 403
            # A proxy nobody named may speak plain http to this machine: it is not believed.
            claimed = {"X-Forwarded-Proto": "https"}
            assert (await remote.get("/login", headers=claimed)).status_code == 403
        async with client_at(console, "203.0.113.7", "https://relay.example") as secure:
            assert (await log_in(secure, "s3cret-token")).status_code == 303

    run_console(tmp_path, test, admin_token="s3cret-token")


@pytest.mark.parametrize(
    ("base_url", "headers", "secure"),
    [
        ("https://relay.example", {}, True),
        (BASE_URL, {"X-Forwarded-Proto": "https"}, True),
        (BASE_URL, {"Forwarded": "for=203.0.113.7;proto=https"}, True),
        (BASE_URL, {}, False),
    ],
    ids=["https", "x-forwarded-proto", "forwarded", "plain http on loopback"],
)
def test_the_session_cookie_is_secure_whenever_the_browser_used_https(
    tmp_path: Path, base_url: str, headers: dict[str, str], secure: bool
) -> None:
    async def test(console: Console) -> None:
        async with client_at(console, "127.0.0.1", base_url) as browser:
            browser.headers.update(headers)
            form = await browser.get("/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
            # A Secure cookie goes back only over https, which the proxy would have spoken.
            browser.cookies.set(session.CSRF_COOKIE, csrf)
            answer = await browser.post("/login", data={"csrf": csrf, "token": "s3cret-token"})
        assert answer.status_code == 303
        cookie = answer.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert ("; secure" in cookie) is secure

    run_console(tmp_path, test, admin_token="s3cret-token")


def test_every_example_event_type_is_offered() -> None:
    assert len(samples.example_types()) == 47


async def _count(console: Console, status: str, count: int) -> bool:
    return len(await console.deliveries(status)) >= count


async def recorder_looks_again(console: Console) -> int:
    """One more round of the pipeline's version recorder; how many versions it added."""
    pipeline = console.service.pipeline
    assert pipeline is not None
    return await asyncio.to_thread(pipeline.versions.record_new)


async def kept_versions(console: Console, name: str, count: int) -> list[str]:
    """The versions the store keeps for `name`, newest first, once there are `count`."""

    async def kept() -> list[str]:
        found = await asyncio.to_thread(console.service.store.list_versions, name)
        return [v.version for v in found] if len(found) == count else []

    return list(await console.until(kept))


def version_rows(html: str) -> list[str]:
    return re.findall(r'data-testid="version-row" data-version="([0-9a-f]+)"', html)


def test_the_version_history_lists_every_version_in_service_newest_first(tmp_path: Path) -> None:
    async def test(console: Console) -> None:
        registry = console.service.registry
        (first,) = await kept_versions(console, DOCS_HANDLER, 1)
        assert first == registry.current()[DOCS_HANDLER].version
        saved = await console.post(f"/transforms/{DOCS_HANDLER}/save", {"source": GOOD})
        assert 'data-state="live"' in saved.text
        second, _ = await kept_versions(console, DOCS_HANDLER, 2)
        # An edit in the folder is the same thing as a save from the console.
        path = console.folder / f"{DOCS_HANDLER}.js"
        path.write_text(GOOD.replace("Payment Completed", "Order Completed"))
        await asyncio.to_thread(registry.reload)
        third, *_ = await kept_versions(console, DOCS_HANDLER, 3)
        # A broken save never ran, so it is not a version the service has had in service.
        await console.post(f"/transforms/{DOCS_HANDLER}/save", {"source": SYNTAX_ERROR})
        page = await console.get(f"/transforms/{DOCS_HANDLER}")
        assert page.status_code == 200
        assert version_rows(page.text) == [third, second, first]
        assert page.text.count('data-testid="restore"') == 3
        assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", page.text)
        assert 'data-testid="version-diff"' not in page.text
        # The recorder looks again (as it does every second): nothing new, nothing twice.
        assert await recorder_looks_again(console) == 0
        assert len(await asyncio.to_thread(console.service.store.list_versions, DOCS_HANDLER)) == 3
        other = await console.get("/transforms/segment_identify_customer")
        assert len(version_rows(other.text)) == 1

    run_console(tmp_path, test)


def version_labels(html: str) -> dict[str, list[str]]:
    """Each listed version's labels: "in service", "the file"."""
    rows = re.findall(
        r'data-testid="version-row" data-version="([0-9a-f]+)">(.*?)</tr>', html, re.S
    )
    return {
        version: re.findall(r'data-testid="version-in-(?:service|file)">([^<]+)<', row)
        for version, row in rows
    }


def file_note(html: str) -> str | None:
    found = re.search(r'data-testid="file-note">([^<]*)<', html)
    return found.group(1) if found else None


def test_the_history_marks_as_the_file_only_the_version_whose_source_the_file_holds(
    tmp_path: Path,
) -> None:
    async def test(console: Console) -> None:
        url = f"/transforms/{DOCS_HANDLER}"
        path = console.folder / f"{DOCS_HANDLER}.js"
        original = path.read_text()
        (first,) = await kept_versions(console, DOCS_HANDLER, 1)
        page = await console.get(url)
        assert version_labels(page.text) == {first: ["in service", "the file"]}
        assert file_note(page.text) is None
        # A save from the editor answers with its result only: the list fetches itself again.
        assert f'id="version-list" data-live="{url}"' in page.text

        # A broken save: the file holds a text that never ran, so no version is the file's.
        await console.post(f"{url}/save", {"source": SYNTAX_ERROR})
        for page in (
            await console.get(url),
            await console.post(
                f"{url}/save", {"source": SYNTAX_ERROR}, fragment=False, follow_redirects=True
            ),
        ):
            assert version_labels(page.text) == {first: ["in service"]}
            note = file_note(page.text)
            assert note is not None and note.startswith(f"the file: does not load: {path}:3:")
            assert "SyntaxError" in note

        # A good save goes into service, and is the file's once the history keeps it.
        await console.post(f"{url}/save", {"source": GOOD})
        second, _ = await kept_versions(console, DOCS_HANDLER, 2)
        page = await console.get(url)
        assert version_labels(page.text) == {second: ["in service", "the file"], first: []}
        assert file_note(page.text) is None

        # An edit in the folder not loaded yet: the file is the first version's text again.
        path.write_text(original)
        page = await console.get(url)
        assert version_labels(page.text) == {second: ["in service"], first: ["the file"]}
        path.write_text(original + "// not loaded yet\n")
        page = await console.get(url)
        assert version_labels(page.text) == {second: ["in service"], first: []}
        assert file_note(page.text) == "the file: changed since it was loaded, not in service yet"

    run_console(tmp_path, test)


def test_a_file_in_service_but_not_kept_yet_is_said_so() -> None:
    """For the second before the recorder keeps the version a save put in service."""
    serving = Transform(name="t", source=GOOD, filename="t.js")
    older = TransformVersion("t", "0123456789ab", THROWS)
    listed = history.listing([older], GOOD, serving, None)
    assert listed.versions == [history.Listed(older, in_service=False, in_file=False)]
    assert listed.file_note == f"version {serving.version}, in service, not in the history yet"
    assert not listed.file_broken


def test_a_diff_between_any_two_versions_is_shown_escaped(tmp_path: Path) -> None:
    marked = GOOD.replace("  return w;\n", "  // </pre><script>alert(1)</script>\n  return w;\n")

    async def test(console: Console) -> None:
        (first,) = await kept_versions(console, DOCS_HANDLER, 1)
        await console.post(f"/transforms/{DOCS_HANDLER}/save", {"source": marked})
        second, _ = await kept_versions(console, DOCS_HANDLER, 2)
        url = f"/transforms/{DOCS_HANDLER}"
        page = await console.get(url, params={"from": first, "to": second})
        assert page.status_code == 200
        shown = page.text.split('data-testid="version-diff"', 1)[1].split("</section>", 1)[0]
        assert f"--- {DOCS_HANDLER}.js @ {first}" in shown
        assert f"+++ {DOCS_HANDLER}.js @ {second}" in shown
        assert '<span class="add">+  // &lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;' in shown
        assert "<script>alert" not in page.text
        assert '<span class="remove">-' in shown
        backwards = await console.get(url, params={"from": second, "to": first})
        assert '<span class="remove">-  // &lt;/pre&gt;' in backwards.text
        same = await console.get(url, params={"from": first, "to": first})
        assert "The two versions are the same." in same.text
        for wanted in ({"from": first, "to": "0123456789ab"}, {"from": "x" * 100, "to": first}):
            unknown = await console.get(url, params=wanted)
            assert unknown.status_code == 404

    run_console(tmp_path, test)


def test_restoring_a_version_writes_the_file_and_puts_it_in_service(tmp_path: Path) -> None:
    async def test(console: Console) -> None:
        registry = console.service.registry
        path = console.folder / f"{DOCS_HANDLER}.js"
        original = path.read_text()
        path.chmod(0o640)
        (first,) = await kept_versions(console, DOCS_HANDLER, 1)
        await console.post(f"/transforms/{DOCS_HANDLER}/save", {"source": GOOD})
        await kept_versions(console, DOCS_HANDLER, 2)
        await console.post(f"/transforms/{DOCS_HANDLER}/save", {"source": SYNTAX_ERROR})
        restore = f"/transforms/{DOCS_HANDLER}/restore"
        posted = await console.post(restore, {"version": first}, fragment=False)
        # Post/redirect/get: the page shown after it can be reloaded without restoring again.
        assert posted.status_code == 303
        assert posted.headers["location"] == f"/transforms/{DOCS_HANDLER}?restored={first}"
        answer = await console.get(posted.headers["location"])
        assert f"Restored: version <code>{first}</code> is in service." in answer.text
        assert path.read_text() == original and path.stat().st_mode & 0o777 == 0o640
        assert registry.current()[DOCS_HANDLER].version == first
        assert registry.errors.get(DOCS_HANDLER) is None
        assert f'data-testid="version">{first}<' in answer.text
        assert [p.name for p in console.folder.iterdir() if p.name.startswith(".")] == []
        fragment = await console.post(restore, {"version": first})
        assert 'data-state="live"' in fragment.text and "<html" not in fragment.text
        # Restored, not new: the history still holds the two versions, once each, when the
        # recorder looks again.
        assert await recorder_looks_again(console) == 0
        assert len(await kept_versions(console, DOCS_HANDLER, 2)) == 2
        unknown = await console.post(restore, {"version": "0123456789ab"})
        assert unknown.status_code == 404
        nameless = await console.post("/transforms/nothing_here/restore", {"version": first})
        assert nameless.status_code == 404
        assert path.read_text() == original

    run_console(tmp_path, test)


def test_a_restore_needs_the_csrf_token_and_the_same_origin(tmp_path: Path) -> None:
    async def test(console: Console) -> None:
        path = console.folder / f"{DOCS_HANDLER}.js"
        (first,) = await kept_versions(console, DOCS_HANDLER, 1)
        await console.post(f"/transforms/{DOCS_HANDLER}/save", {"source": GOOD})
        restore = f"/transforms/{DOCS_HANDLER}/restore"
        token = await console.csrf()
        missing = await console.client.post(restore, data={"version": first})
        wrong = await console.client.post(restore, data={"version": first, "csrf": "x" * 43})
        cross = await console.client.post(
            restore,
            data={"version": first, "csrf": token},
            headers={"Origin": "http://evil.example"},
        )
        assert [missing.status_code, wrong.status_code, cross.status_code] == [403, 403, 403]
        assert path.read_text() == GOOD
        same = await console.client.post(
            restore, data={"version": first, "csrf": token}, headers={"Origin": BASE_URL}
        )
        assert same.status_code == 303
        assert path.read_text() != GOOD

    run_console(tmp_path, test)


def test_a_save_without_script_redirects_to_the_page_that_says_how_it_ended(
    tmp_path: Path,
) -> None:
    """Post/redirect/get: reloading what the browser shows after a save saves nothing again."""

    async def test(console: Console) -> None:
        url = f"/transforms/{DOCS_HANDLER}"
        posted = await console.post(f"{url}/save", {"source": GOOD}, fragment=False)
        assert posted.status_code == 303 and posted.headers["location"] == f"{url}?saved=1"
        shown = await console.get(posted.headers["location"])
        version = console.service.registry.current()[DOCS_HANDLER].version
        assert f"Saved: version <code>{version}</code> is in service." in shown.text
        broken = await console.post(f"{url}/save", {"source": SYNTAX_ERROR}, fragment=False)
        assert broken.status_code == 303
        shown = await console.get(broken.headers["location"])
        assert "Saved, but it does not compile" in shown.text and "SyntaxError" in shown.text
        assert f"The last good version, <code>{version}</code>, stays in service." in shown.text

    run_console(tmp_path, test)


def test_a_save_is_in_the_version_history_at_once(tmp_path: Path) -> None:
    """Not when the pipeline's recorder next looks (a second or more after its own reload)."""

    async def test(console: Console) -> None:
        pipeline = console.service.pipeline
        assert pipeline is not None
        (first,) = await kept_versions(console, DOCS_HANDLER, 1)
        pipeline.versions.record_new = lambda: 0  # type: ignore[method-assign]  # the seam
        await console.post(f"/transforms/{DOCS_HANDLER}/save", {"source": GOOD})
        page = await console.get(f"/transforms/{DOCS_HANDLER}")
        second = console.service.registry.current()[DOCS_HANDLER].version
        assert version_rows(page.text) == [second, first]
        assert version_labels(page.text)[second] == ["in service", "the file"]

    run_console(tmp_path, test)


def test_a_delivery_page_shows_the_segment_message_as_the_wire_carried_it(
    tmp_path: Path,
) -> None:
    """In a /v1/batch call with its messageId, not as the handler's /v1/track."""

    async def test(console: Console) -> None:
        await console.send_webhook("msg_wire")
        (track,) = await console.until(lambda: tracked(console))
        page = await console.get(f"/deliveries/{track['id']}")
        wire = re.search(r'data-testid="wire-request"><code>([^<]+)</code>', page.text)
        assert wire is not None and wire.group(1) == "POST https://api.segment.io/v1/batch"
        payload = re.search(r'data-testid="request-payload">(.*?)</pre>', page.text, re.S)
        assert payload is not None
        (message,) = json.loads(html.unescape(payload.group(1)))["batch"]
        assert message["type"] == "track" and message["event"] == "Payment Completed"
        assert message["messageId"].startswith("dodo-")
        assert message["context"]["library"]["name"] == "dodo-transform"
        handler = page.text.split('data-testid="handler-request"', 1)[1]
        assert "POST https://api.segment.io/v1/track" in handler.split("</summary>", 1)[0]

    run_console(tmp_path, test, segment_write_key="wk_test")


def test_the_deliveries_table_shows_each_message_and_marks_skipped_rows(tmp_path: Path) -> None:
    async def test(console: Console) -> None:
        await console.send_webhook("msg_table")
        await console.until(lambda: tracked(console))
        page = await console.get("/deliveries")
        rows = re.findall(
            r'data-testid="delivery-row" data-id="\d+" data-status="(\w+)">.*?'
            r'data-testid="delivery-transform">([^<]+)<.*?'
            r'data-testid="delivery-message"><code class="excerpt">([^<]*)<',
            page.text,
            re.S,
        )
        by_transform = {transform: (status, html.unescape(m)) for status, transform, m in rows}
        customer = sample("payment.succeeded")["data"]["customer"]["customer_id"]
        assert by_transform[DOCS_HANDLER] == ("delivered", f'track "Payment Completed" {customer}')
        assert by_transform["segment_subscription_lifecycle"] == ("skipped", "")
        assert 'data-testid="show-skipped"' in page.text
        assert 'data-testid="skipped-hidden">1 skipped row hidden on this page.' in page.text
        only_skipped = await console.get("/deliveries?status=skipped")
        assert 'data-testid="show-skipped"' not in only_skipped.text  # asked for: all shown

    run_console(tmp_path, test, segment_write_key="wk_test")


async def tracked(console: Console) -> list[dict[str, Any]]:
    """The docs handler's delivered deliveries."""
    found = await console.deliveries("delivered")
    return [d for d in found if d["transform"] == DOCS_HANDLER]


def test_the_editor_says_a_save_reaches_this_hosts_folder_only_when_other_hosts_run(
    tmp_path: Path,
) -> None:
    async def test(console: Console) -> None:
        url = f"/transforms/{DOCS_HANDLER}"
        alone = await console.get(url)
        assert 'data-testid="other-hosts"' not in alone.text  # only this host's instance
        store = console.service.store
        other = Heartbeat("host-b:/var/lib/dodo-transform/8001", "host-b", "all", "0.1.0", {})
        await asyncio.to_thread(store.beat, other)
        page = await console.get(url)
        note = re.search(r'data-testid="other-hosts">([^<]+)<', page.text)
        assert note is not None and "Instances on other hosts (host-b)" in note.group(1)
        assert "a save here changes this host's file only" in note.group(1)

    run_console(tmp_path, test)
