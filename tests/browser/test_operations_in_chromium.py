"""Operating at scale in Chromium: searching the deliveries, replaying a filtered list in bulk."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from dodo_transform.testing import InProcessServer, SegmentStandIn
from tests.browser.conftest import Watched
from tests.conftest import sample
from tests.integration.test_bulk_replay import counts, dead_after, forwarding

pytestmark = pytest.mark.browser


def test_a_search_by_customer_email_finds_its_deliveries(
    page: Page, server: InProcessServer
) -> None:
    for webhook_id, email in [("msg_ann", "ann@example.com"), ("msg_bob", "bob@example.com")]:
        body = sample("payment.succeeded")
        body["data"]["customer"]["email"] = email
        assert server.post(body, webhook_id=webhook_id).status_code == 200
    server.wait_idle()

    page.goto("/deliveries")
    expect(page.get_by_test_id("delivery-row")).to_have_count(6)
    page.get_by_test_id("search").fill("Ann@Example.com")
    page.get_by_test_id("search").press("Enter")
    expect(page).to_have_url(re.compile(r"[?&]q=Ann%40Example\.com"))
    rows = page.get_by_test_id("delivery-row")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("msg_ann")
    expect(page.get_by_test_id("delivery-row").filter(has_text="msg_bob")).to_have_count(0)


def test_a_bulk_replay_of_1000_dead_deliveries_is_counted_progresses_and_is_cancelled(
    browser: Browser, workdir: Path, standin: SegmentStandIn
) -> None:
    with forwarding(workdir, standin, bulk_replay_per_second=60.0) as (server, _, refusing):
        dead_after(server, 1000)
        refusing.accept()
        context = browser.new_context(base_url=server.url)
        context.set_default_timeout(30_000)
        watched = Watched(server.url)
        watched.watch(context)
        page = context.new_page()

        page.goto("/deliveries?status=dead")
        page.get_by_test_id("replay-all").click()
        expect(page.get_by_test_id("replay-count")).to_contain_text("1000")
        expect(page.get_by_test_id("confirm-replay")).to_have_text("Replay 1000 deliveries")
        page.get_by_test_id("confirm-replay").click()
        progress = page.get_by_test_id("bulk-progress")
        expect(progress).to_have_attribute("data-total", "1000")
        # It moves on the page by itself (the page refreshes its part live).
        expect(progress).not_to_have_attribute("data-done", "0", timeout=20_000)
        server.wait_until(lambda: done_so_far(page) >= 300, timeout=60, what="300 replayed")
        page.get_by_test_id("cancel-replay").click()
        expect(progress).to_have_attribute("data-state", "cancelled")
        server.wait_idle(timeout=60)
        (bulk,) = server.api("GET", "/api/replays").json()
        after = counts(server)
        assert 300 <= bulk["done"] < 1000, bulk
        assert after["dead"] == 1000 - bulk["done"]  # the rest untouched
        assert after["replayed"] == after["delivered"] == bulk["done"]
        context.close()
        assert watched.problems == []


def done_so_far(page: Page) -> int:
    return int(page.get_by_test_id("bulk-progress").get_attribute("data-done") or 0)
