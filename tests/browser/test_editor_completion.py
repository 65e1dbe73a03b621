"""The console's editor knows Dodo's events (in Debian's Chromium, against the real server):
after `webhook.payload.data.` it lists the fields of the chosen sample's event type, and on
hover it shows a field's type and an example value. Everything it needs comes from the server
itself (the `page` fixture fails on any request elsewhere or any CSP violation)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

DOCS = "segment_track_payments"


def type_at_the_end(page: Page, text: str) -> None:
    page.get_by_test_id("editor").click()
    page.keyboard.press("Control+End")
    page.keyboard.press("Enter")
    page.keyboard.type(text)


def test_the_editor_completes_webhook_payload_data_for_the_chosen_event_type(
    page: Page,
) -> None:
    page.goto(f"/transforms/{DOCS}")
    page.get_by_test_id("sample").select_option(label="payment.succeeded")
    type_at_the_end(page, "webhook.payload.data.")
    listed = page.locator(".cm-tooltip-autocomplete")
    expect(listed).to_be_visible()
    expect(listed).to_contain_text("customer")
    expect(listed).to_contain_text("total_amount")
    expect(listed).not_to_contain_text("recurring_pre_tax_amount")
    page.keyboard.type("custo")  # narrows the list
    expect(listed.locator("li")).to_have_count(2)  # customer, custom_field_responses
    page.keyboard.type("mer")
    expect(listed.locator("li[aria-selected] .cm-completionLabel")).to_have_text("customer")
    page.keyboard.press("Enter")  # takes the one selected
    page.keyboard.type(".")
    expect(listed).to_contain_text("customer_id")
    expect(listed).to_contain_text("string")  # each field's type beside it
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("editor")).to_contain_text("webhook.payload.data.customer.")

    page.get_by_test_id("sample").select_option(label="subscription.active")
    type_at_the_end(page, "webhook.payload.data.rec")
    expect(listed).to_contain_text("recurring_pre_tax_amount")


def test_hovering_a_field_shows_its_type_and_an_example(page: Page) -> None:
    """The docs' handler reads the data through an alias (`const p = webhook.payload.data`)."""
    page.goto(f"/transforms/{DOCS}")
    page.get_by_test_id("sample").select_option(label="payment.succeeded")
    expect(page.locator("#editor .cm-content")).to_contain_text("p.customer.customer_id")
    box = page.evaluate(
        """() => {
          const walker = document.createTreeWalker(
            document.querySelector('#editor .cm-content'), NodeFilter.SHOW_TEXT);
          for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            const at = node.textContent.indexOf('customer_id');
            if (at < 0) continue;
            const range = document.createRange();
            range.setStart(node, at + 2);
            range.setEnd(node, at + 3);
            const rect = range.getBoundingClientRect();
            return {x: rect.x + rect.width / 2, y: rect.y + rect.height / 2};
          }
          return null;
        }"""
    )
    assert box is not None
    page.mouse.move(box["x"], box["y"])
    shown = page.locator(".cm-member-info")
    expect(shown).to_be_visible()
    expect(shown).to_contain_text("customer_id: string")
    expect(shown).to_contain_text('example: "cus_8VbC6JDZzPEqfBPUdpj0K"')
