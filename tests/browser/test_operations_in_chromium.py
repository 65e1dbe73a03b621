"""Operating at scale in Chromium: searching the deliveries, replaying a filtered list in bulk."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from dodo_transform.testing import InProcessServer
from tests.conftest import sample

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
