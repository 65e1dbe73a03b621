"""The admin API over a whole in-process service (real store, real QuickJS, Segment at the
httpx seam): typed answers, cursor pages, redaction at the edge, replays run by the pipeline."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from dodo_transform import signing
from dodo_transform.outgoing import OutgoingRequest
from dodo_transform.settings import load_settings
from dodo_transform.store import DeliveryStatus, NewDelivery, NewEvent
from dodo_transform.testing import SECRET, InProcess, in_process
from tests.conftest import sample

TRACK = (
    "function handler(w) { w.url = 'https://api.segment.io/v1/track';"
    " w.payload = {userId: 'u', event: 'Payment Completed'}; return w; }"
)
BROKEN = "function handler(w) { throw new Error('broken'); }"


class Relay(InProcess):
    async def post(self, webhook_id: str) -> None:
        await self.send_webhook(webhook_id, sample("payment.succeeded"))

    async def reload_with(self, source: str) -> None:
        (self.folder / "t.js").write_text(source)
        await asyncio.to_thread(self.service.registry.reload)


def run_with_relay(
    tmp_path: Path,
    test: Callable[[Relay], Awaitable[None]],
    segment_status: int = 200,
    **settings: Any,
) -> None:
    folder = tmp_path / "transforms"
    folder.mkdir()
    (folder / "t.js").write_text(BROKEN)
    config = load_settings(
        transforms=folder,
        data_dir=tmp_path / "data",
        worker_process=False,
        **({"webhook_secret": SECRET} | settings),
    )
    segment = httpx.MockTransport(lambda request: httpx.Response(segment_status))

    async def main() -> None:
        async with in_process(config, transport=segment) as (service, client):
            await test(Relay(service, client, folder))

    asyncio.run(main())


def test_a_replay_is_run_by_the_pipeline_and_answers_its_statuses(tmp_path: Path) -> None:
    async def test(relay: Relay) -> None:
        await relay.post("msg_1")
        (failed,) = await relay.until(lambda: relay.deliveries("failed"))
        refused = await relay.client.post(f"/api/deliveries/{failed['id']}/replay")
        assert refused.status_code == 200  # the still-broken version ran again: failed again
        assert refused.json()["statuses"] == ["failed"]
        await relay.reload_with(TRACK)
        (failed,) = await relay.deliveries("failed")
        answer = await relay.client.post(f"/api/deliveries/{failed['id']}/replay")
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"replayed": failed["id"], "statuses": ["pending"], "queued": False}
        await relay.until(lambda: relay.deliveries("delivered"))
        again = await relay.client.post(f"/api/deliveries/{failed['id']}/replay")
        assert again.status_code == 409 and "only failed or dead" in again.json()["detail"]

    run_with_relay(tmp_path, test, segment_write_key="wk_test")


def test_bulk_replay_queues_once_per_event_and_the_pipeline_runs_them(tmp_path: Path) -> None:
    async def test(relay: Relay) -> None:
        for n in range(3):
            await relay.post(f"msg_{n}")
        await relay.until(lambda: _count(relay, "failed", 3))
        await relay.reload_with(TRACK)
        answer = await relay.client.post("/api/replay", params={"status": "failed"})
        assert answer.status_code == 200
        assert len(answer.json()["replayed"]) == 3 and answer.json()["errors"] == []
        await relay.until(lambda: _count(relay, "delivered", 3))
        bad = await relay.client.post("/api/replay", params={"status": "delivered"})
        assert bad.status_code == 400

    run_with_relay(tmp_path, test, segment_write_key="wk_test")


async def _count(relay: Relay, status: str, wanted: int) -> bool:
    return len(await relay.deliveries(status)) == wanted


def test_lists_page_by_cursor_with_a_link_header(tmp_path: Path) -> None:
    async def test(relay: Relay) -> None:
        for n in range(5):
            await relay.post(f"msg_{n}")
        await relay.until(lambda: _count(relay, "failed", 5))
        first = await relay.client.get("/api/events", params={"limit": 2})
        assert [e["webhook_id"] for e in first.json()] == ["msg_4", "msg_3"]
        assert all(len(e["deliveries"]) == 1 for e in first.json())
        link = first.headers["link"]
        assert link.endswith('>; rel="next"')
        second = await relay.client.get(link[1 : link.index(">")])
        assert [e["webhook_id"] for e in second.json()] == ["msg_2", "msg_1"]
        last = await relay.client.get("/api/deliveries", params={"limit": 10})
        assert len(last.json()) == 5 and "link" not in last.headers

    run_with_relay(tmp_path, test)


def test_credentials_are_redacted_at_the_edge_and_kept_in_the_store(tmp_path: Path) -> None:
    async def test(relay: Relay) -> None:
        # A handler that sets its own credentials: stored as it will be sent, shown redacted.
        await relay.reload_with(
            TRACK.replace("return w;", "w.headers = {Authorization: 'Basic own_Secret'}; return w;")
        )
        await relay.post("msg_1")
        (shown,) = await relay.until(lambda: relay.deliveries("delivered"))
        assert shown["request"]["headers"]["Authorization"] == "[redacted]"
        assert "own_Secret" not in json.dumps(shown)
        stored = relay.service.store.get_delivery(shown["id"])
        assert stored is not None and stored.request is not None
        assert stored.request.headers["Authorization"] == "Basic own_Secret"

    run_with_relay(tmp_path, test)


@pytest.mark.parametrize(
    "path", ["/api/events/9223372036854775808", "/api/deliveries/99999999999999999999"]
)
def test_ids_out_of_range_are_not_found(tmp_path: Path, path: str) -> None:
    async def test(relay: Relay) -> None:
        answer = await relay.client.get(path)
        assert answer.status_code == 404, answer.text

    run_with_relay(tmp_path, test)


def test_openapi_describes_the_admin_answers(tmp_path: Path) -> None:
    async def test(relay: Relay) -> None:
        spec = (await relay.client.get("/openapi.json")).json()
        listed = spec["paths"]["/api/deliveries"]["get"]["responses"]["200"]["content"]
        assert listed["application/json"]["schema"]["items"]["$ref"].endswith("/DeliveryOut")
        status = spec["components"]["schemas"]["DeliveryStatus"]["enum"]
        assert "dry_run" in status and "replayed" in status and len(status) == 10

    run_with_relay(tmp_path, test)


@pytest.mark.parametrize(
    "path", ["/api/deliveries/9223372036854775808/replay", "/api/deliveries/12345/replay"]
)
def test_replaying_an_unknown_delivery_is_not_found(tmp_path: Path, path: str) -> None:
    async def test(relay: Relay) -> None:
        answer = await relay.client.post(path)
        assert answer.status_code == 404, answer.text
        assert answer.json()["detail"].startswith("no delivery ")

    run_with_relay(tmp_path, test)


def nested(depth: int) -> Any:
    value: Any = {}
    for _ in range(depth - 1):
        value = {"p": value}
    return value


def depth_of(value: Any) -> int:
    depth = 0
    while isinstance(value, dict):
        value, depth = value.get("p"), depth + 1
    return depth


# Copies the customer's name into the message and the console, and nests the message 300 deep.
COPIES_THE_NAME = (
    "function handler(w) { const name = w.payload.data.customer.name; console.log(name);"
    " let p = {}; for (let i = 1; i < 300; i++) p = {p};"
    " w.url = 'https://api.segment.io/v1/identify';"
    " w.payload = {userId: 'u', traits: {name}, p}; return w; }"
)


def test_every_stored_payload_and_text_is_shown(tmp_path: Path) -> None:
    """Pydantic's serialiser answered 500 for payloads nested past 255 levels and for lone
    surrogates; every list and detail answer shows them now, the text made well-formed."""

    async def test(relay: Relay) -> None:
        await relay.reload_with(COPIES_THE_NAME)
        body = sample("payment.succeeded")
        body["data"]["customer"]["name"] = "\ud83d Ada"
        raw = json.dumps(body).encode()  # ASCII: the lone surrogate is the escape \ud83d
        answer = await relay.client.post(
            "/webhooks/dodo", content=raw, headers=signing.sign(SECRET, "msg_lone", raw)
        )
        assert answer.status_code == 200, answer.text
        (sent,) = await relay.until(lambda: relay.deliveries("delivered"))
        assert sent["request"]["payload"]["traits"]["name"] == "\ufffd Ada"
        assert sent["logs"] == [["log", "\ufffd Ada"]]
        assert depth_of(sent["request"]["payload"]["p"]) == 300
        store = relay.service.store
        ((legacy, _),) = store.add_events([NewEvent("msg_old", "payment.succeeded", b"{}")])
        # Stored by an older version, before payload depth was limited.
        request = OutgoingRequest("POST", "https://api.segment.io/v1/track", {}, nested(900))
        store.record_outcomes(
            {legacy: [NewDelivery("t", "v0", 0, DeliveryStatus.DEAD, request=request)]}
        )
        (old,) = store.list_deliveries(event_id=legacy)
        for path in (
            "/api/events",
            f"/api/events/{sent['event_id']}",
            f"/api/events/{legacy}",
            "/api/deliveries",
            f"/api/deliveries/{sent['id']}",
            f"/api/deliveries/{old.id}",
        ):
            shown = await relay.client.get(path)
            assert shown.status_code == 200, (path, shown.text[:300])
            assert shown.headers["content-type"] == "application/json"
        detail = (await relay.client.get(f"/api/deliveries/{old.id}")).json()
        assert depth_of(detail["request"]["payload"]) == 900
        event = (await relay.client.get(f"/api/events/{sent['event_id']}")).json()
        assert json.loads(event["body"]) == body  # the body exactly as received

    run_with_relay(tmp_path, test, segment_write_key="wk_test")


def test_held_messages_are_released_by_a_replay_once_the_cause_is_fixed(tmp_path: Path) -> None:
    """A message Segment would drop is held as `invalid`; once the handler sets a userId, its
    replay sends it. Held statuses are accepted by the bulk replay too."""
    no_user = TRACK.replace("userId: 'u', ", "")

    async def test(relay: Relay) -> None:
        await relay.reload_with(no_user)
        await relay.post("msg_held")
        (held,) = await relay.until(lambda: relay.deliveries("invalid"))
        assert "neither userId nor anonymousId" in held["error"]
        await relay.reload_with(TRACK)
        answer = await relay.client.post(f"/api/deliveries/{held['id']}/replay")
        assert answer.status_code == 200, answer.text
        assert answer.json()["statuses"] == ["pending"]
        (sent,) = await relay.until(lambda: relay.deliveries("delivered"))
        assert sent["event_id"] == held["event_id"]
        assert [d["id"] for d in await relay.deliveries("replayed")] == [held["id"]]
        for status in ("invalid", "blocked", "dry_run"):
            bulk = await relay.client.post("/api/replay", params={"status": status})
            assert bulk.status_code == 200 and bulk.json() == {"replayed": [], "errors": []}

    run_with_relay(tmp_path, test, segment_write_key="wk_test")


def test_a_dry_run_is_replayed_into_another_dry_run_until_a_write_key_is_set(
    tmp_path: Path,
) -> None:
    async def test(relay: Relay) -> None:
        await relay.reload_with(TRACK)
        await relay.post("msg_dry")
        (recorded,) = await relay.until(lambda: relay.deliveries("dry_run"))
        answer = await relay.client.post(f"/api/deliveries/{recorded['id']}/replay")
        assert answer.status_code == 200 and answer.json()["statuses"] == ["pending"]
        (again,) = await relay.until(lambda: relay.deliveries("dry_run"))
        assert again["id"] != recorded["id"] and again["generation"] == 1
        assert [d["id"] for d in await relay.deliveries("replayed")] == [recorded["id"]]

    run_with_relay(tmp_path, test)


PARTNER = (
    "function handler(w) { w.url = 'https://partner.example.com/hook';"
    " w.payload = {ok: true}; return w; }"
)


@pytest.mark.parametrize(
    ("handler", "fix"),
    [
        (TRACK, "check its write key (write_key in transforms.toml, else SEGMENT_WRITE_KEY)"),
        (PARTNER, "check the credentials it sends (its headers in transforms.toml"),
    ],
)
def test_refused_credentials_are_an_error_naming_the_transform_and_what_to_check(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, handler: str, fix: str
) -> None:
    async def test(relay: Relay) -> None:
        await relay.reload_with(handler)
        await relay.post("msg_401")
        await relay.until(lambda: relay.deliveries("dead"))

    with caplog.at_level("ERROR", logger="dodo_transform.pipeline"):
        run_with_relay(
            tmp_path,
            test,
            segment_status=401,
            segment_write_key="wk_wrong_Secret",
            allowed_hosts="partner.example.com",
        )
    (record,) = [r for r in caplog.records if "refused the credentials" in r.getMessage()]
    assert "of transform t: " + fix in record.getMessage() and record.levelname == "ERROR"
    assert "wk_wrong_Secret" not in caplog.text


def test_transforms_show_their_configuration_but_no_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESEND_API_KEY", "re_live_Secret")

    async def test(relay: Relay) -> None:
        (relay.folder / "transforms.toml").write_text(
            "[t]\n"
            'url = "https://hooks.slack.com/services/T0/B0/tokenSecret"\n'
            'events = ["payment.succeeded", "subscription.*"]\n'
            'write_key = "wk_own_Secret"\n'
            'headers = { Authorization = "Bearer ${RESEND_API_KEY}" }\n'
        )
        await relay.reload_with(TRACK)
        answer = (await relay.client.get("/api/transforms")).json()
        (shown,) = [t for t in answer if t["name"] == "t"]
        assert shown["events"] == ["payment.succeeded", "subscription.*"]
        assert shown["url_host"] == "hooks.slack.com"
        assert shown["header_names"] == ["Authorization"] and shown["own_write_key"] is True
        text = json.dumps(answer)
        assert not any(s in text for s in ("tokenSecret", "wk_own_Secret", "re_live_Secret"))

    run_with_relay(tmp_path, test)


IDENTIFY = (
    "function handler(w) { w.url = 'https://api.segment.io/v1/identify';"
    " w.payload = {userId: 'u'}; return w; }"
)


def test_a_backfill_counts_first_then_runs_a_new_transform_over_stored_events(
    tmp_path: Path,
) -> None:
    async def test(relay: Relay) -> None:
        await relay.reload_with(TRACK)
        for n in range(3):
            await relay.post(f"msg_{n}")
        await relay.until(lambda: _count(relay, "delivered", 3))
        (relay.folder / "identify.js").write_text(IDENTIFY)
        await asyncio.to_thread(relay.service.registry.reload)
        counted = await relay.client.post(
            "/api/backfills", params={"transform": "identify", "dry_run": "true"}
        )
        assert counted.status_code == 200, counted.text
        assert counted.json()["id"] is None
        assert counted.json()["remaining"] == {"payment.succeeded": 3}
        assert await relay.deliveries("delivered") != []  # the dry run started nothing
        started = await relay.client.post(
            "/api/backfills", params={"transform": "identify", "since": "2000-01-01"}
        )
        assert started.status_code == 201, started.text
        assert started.json()["remaining_total"] == 3 and started.json()["id"] >= 1
        await relay.until(lambda: _count(relay, "delivered", 6))

        async def finished() -> bool:  # after its last step's pause, paced to the rate limit
            (backfill,) = (await relay.client.get("/api/backfills")).json()
            return backfill["done_at"] is not None

        await relay.until(finished)
        (shown,) = (await relay.client.get("/api/backfills")).json()
        assert shown["ran"] == 3
        assert shown["remaining_total"] == 0

    run_with_relay(tmp_path, test, segment_write_key="wk_test")


@pytest.mark.parametrize(
    ("params", "status", "detail"),
    [
        ({"transform": "nope"}, 404, "no transform nope (loaded: t)"),
        ({"transform": "t", "since": "last tuesday"}, 422, "is not a date; give e.g. 2026-10-01"),
        ({}, 422, "transform"),
    ],
)
def test_a_backfill_that_cannot_run_says_why(
    tmp_path: Path, params: dict[str, str], status: int, detail: str
) -> None:
    async def test(relay: Relay) -> None:
        answer = await relay.client.post("/api/backfills", params=params)
        assert answer.status_code == status
        assert detail in json.dumps(answer.json()["detail"])
        assert (await relay.client.get("/api/backfills")).json() == []

    run_with_relay(tmp_path, test)


def test_bulk_replay_can_be_narrowed_to_a_transform_and_recent_events(tmp_path: Path) -> None:
    async def test(relay: Relay) -> None:
        (relay.folder / "other.js").write_text(BROKEN)
        await asyncio.to_thread(relay.service.registry.reload)
        await relay.post("msg_1")
        await relay.until(lambda: _count(relay, "failed", 2))
        answer = await relay.client.post(
            "/api/replay", params={"status": "failed", "transform": "other"}
        )
        (only,) = answer.json()["replayed"]
        assert (await relay.client.get(f"/api/deliveries/{only}")).json()["transform"] == "other"
        later = await relay.client.post(
            "/api/replay", params={"status": "failed", "since": "2999-01-01T00:00:00Z"}
        )
        assert later.json()["replayed"] == []

    run_with_relay(tmp_path, test)


def test_settings_mistakes_show_on_the_transform_and_in_the_status(tmp_path: Path) -> None:
    async def test(relay: Relay) -> None:
        (relay.folder / "transforms.toml").write_text('[t]\nevents = ["payment.succeded"]\n')
        await asyncio.to_thread(relay.service.registry.reload)
        (shown,) = (await relay.client.get("/api/transforms")).json()
        assert shown["name"] == "t" and shown["load_error"] is None
        (warning,) = shown["warnings"]
        assert "payment.succeded matches none of Dodo's event types" in warning
        assert (await relay.client.get("/api/status")).json()["settings_error"] is None
        (relay.folder / "transforms.toml").write_text("[t]\nenabled = nope\n")  # not TOML
        await asyncio.to_thread(relay.service.registry.reload)
        status = (await relay.client.get("/api/status")).json()
        assert "transforms.toml" in status["settings_error"]
        names = [t["name"] for t in (await relay.client.get("/api/transforms")).json()]
        assert names == ["t"]  # the settings file is no transform

    run_with_relay(tmp_path, test)


def test_header_variables_may_come_from_the_services_settings_file(tmp_path: Path) -> None:
    settings_file = tmp_path / "service.env"
    settings_file.write_text("PARTNER_TOKEN=tok_from_the_file\n")

    async def test(relay: Relay) -> None:
        (relay.folder / "transforms.toml").write_text(
            '[t]\nheaders = { Authorization = "Bearer ${PARTNER_TOKEN}" }\n'
        )
        await relay.reload_with(TRACK)
        (shown,) = (await relay.client.get("/api/transforms")).json()
        assert shown["load_error"] is None and shown["header_names"] == ["Authorization"]
        headers = relay.service.registry.settings("t").header_values()
        assert headers["Authorization"] == "Bearer tok_from_the_file"

    run_with_relay(tmp_path, test, config_file=settings_file)


def test_each_event_records_the_mode_of_the_dodo_endpoint_that_sent_it(tmp_path: Path) -> None:
    """DODO_WEBHOOK_SECRET verifies live webhooks and DODO_WEBHOOK_TEST_SECRET test-mode ones:
    one service, both of Dodo's endpoints; each event says which, in the API and the console."""
    test_secret = signing.new_secret()

    async def test(relay: Relay) -> None:
        # The handler sees it too: a test-mode payment is named apart in Segment.
        await relay.reload_with(
            "function handler(w) { w.url = 'https://api.segment.io/v1/track';"
            " w.payload = {userId: 'u', event: w.mode === 'test' ? 'Test Payment' : 'Payment'};"
            " return w; }"
        )
        for webhook_id, secret in (("msg_live", SECRET), ("msg_test", test_secret)):
            raw = json.dumps(sample("payment.succeeded")).encode()
            headers = signing.sign(secret, webhook_id, raw)
            answer = await relay.client.post("/webhooks/dodo", content=raw, headers=headers)
            assert answer.status_code == 200, answer.text
        listed = (await relay.client.get("/api/events")).json()
        assert {e["webhook_id"]: e["mode"] for e in listed} == {
            "msg_live": "live",
            "msg_test": "test",
        }
        tested = next(e for e in listed if e["webhook_id"] == "msg_test")
        one = (await relay.client.get(f"/api/events/{tested['id']}")).json()
        assert one["mode"] == "test"
        page = await relay.client.get(f"/events/{tested['id']}", headers={"Accept": "text/html"})
        assert (
            'data-testid="event-mode"><span class="state state-disabled">test</span>' in page.text
        )
        sent = await relay.until(lambda: _delivered(relay, 2))
        assert {d["webhook_id"]: d["request"]["payload"]["event"] for d in sent} == {
            "msg_live": "Payment",
            "msg_test": "Test Payment",
        }

    run_with_relay(tmp_path, test, webhook_test_secret=test_secret, segment_write_key="wk")


def test_without_a_configured_secret_the_local_trial_secret_makes_test_events(
    tmp_path: Path,
) -> None:
    """The data dir's secret is for `send`, never Dodo's live endpoint's."""

    async def test(relay: Relay) -> None:
        secret = (tmp_path / "data" / "webhook-secret").read_text().strip()
        raw = json.dumps(sample("payment.succeeded")).encode()
        headers = signing.sign(secret, "msg_local", raw)
        assert (await relay.client.post("/webhooks/dodo", content=raw, headers=headers)).is_success
        (event,) = (await relay.client.get("/api/events")).json()
        assert event["mode"] == "test"

    run_with_relay(tmp_path, test, webhook_secret=None)


async def _delivered(relay: Relay, count: int) -> list[dict[str, Any]]:
    """The delivered deliveries, once there are `count`."""
    found = await relay.deliveries("delivered")
    return found if len(found) >= count else []
