"""The console in a real browser (Debian's Chromium) against the real server process: what a
merchant does without a terminal, checked through the interface's `data-testid`s and, for
what goes live, at the Segment stand-in."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from dodo_transform.testing import InProcessServer, SegmentStandIn
from tests.conftest import sample

pytestmark = pytest.mark.browser

DOCS = "segment_track_payments"
Shoot = Callable[[Page, str], None]
# Typed into the editor: no leading indentation, the editor indents as it goes.
LIVE_HANDLER = """function handler(webhook) {
if (webhook.eventType !== "payment.succeeded") return webhook;
webhook.url = "https://api.segment.io/v1/track";
webhook.payload = {userId: webhook.payload.data.customer.customer_id, event: "Payment Made Live"};
return webhook;
}"""
BROKEN_HANDLER = "function handler(webhook) {\nreturn webhook.payload.data.nope.x;\n}"
SYNTAX_ERROR = "function handler(webhook) {\nreturn webhook;\n}}"


def replace_code(page: Page, code: str) -> None:
    """Click in the editor, select everything and type `code` over it, as a person would."""
    page.get_by_test_id("editor").click()
    page.keyboard.press("Control+a")
    page.keyboard.type(code)


def messages_named(standin: SegmentStandIn, event: str) -> list[dict[str, Any]]:
    return [m for m in standin.messages() if m.get("event") == event]


def test_the_transforms_page_lists_every_transform_and_opens_the_editor(
    page: Page, shoot: Shoot
) -> None:
    page.goto("/transforms")
    rows = page.get_by_test_id("transform-row")
    expect(rows).to_have_count(3)
    expect(rows.filter(has_text=DOCS)).to_contain_text("live")
    rows.filter(has_text=DOCS).get_by_role("link", name=DOCS).click()
    expect(page).to_have_url(re.compile(f"/transforms/{DOCS}$"))
    expect(page.get_by_test_id("editor")).to_contain_text("Payment Completed")
    expect(page.locator("#editor .cm-editor")).to_be_visible()  # CodeMirror, not the textarea


def test_a_test_run_of_the_docs_handler_shows_outcome_request_and_diff(
    page: Page, shoot: Shoot
) -> None:
    page.goto(f"/transforms/{DOCS}")
    sample_chooser = page.get_by_test_id("sample")
    expect(sample_chooser.locator("option")).to_have_count(48)  # 47 examples and "custom"
    sample_chooser.select_option(label="payment.succeeded")
    page.get_by_test_id("run-test").click()
    result = page.get_by_test_id("test-result")
    expect(result.get_by_test_id("outcome")).to_have_text("deliver")
    expect(result).to_contain_text("POST https://api.segment.io/v1/track")
    expect(result).to_contain_text('"event": "Payment Completed"')
    expect(result.get_by_test_id("duration")).to_contain_text("ms")
    result.locator("summary", has_text="diff").click()
    expect(result.locator("pre.diff .add").first).to_be_visible()
    shoot(page, "test-run")
    sample_chooser.select_option(label="refund.succeeded")
    page.keyboard.press("Control+Enter")  # the shortcut runs it too
    expect(result.get_by_test_id("outcome")).to_have_text("skipped")


def test_a_test_run_shows_an_error_with_its_line_and_column(page: Page) -> None:
    page.goto(f"/transforms/{DOCS}")
    replace_code(page, BROKEN_HANDLER)
    page.get_by_test_id("run-test").click()
    result = page.get_by_test_id("test-result")
    expect(result.get_by_test_id("outcome")).to_have_text("error")
    expect(result).to_contain_text(re.compile(rf"{DOCS}\.js:2:\d+"))
    expect(result).to_contain_text("TypeError")
    result.get_by_role("button", name=re.compile("Go to line 2:")).click()
    expect(page.locator("#editor .cm-activeLine")).to_contain_text("nope.x")


def test_an_impact_preview_shows_what_an_edit_changes_before_saving(
    page: Page, server: InProcessServer, standin: SegmentStandIn, shoot: Shoot
) -> None:
    server.post(sample("payment.succeeded"), webhook_id="msg_paid")
    server.post(sample("refund.succeeded"), webhook_id="msg_refunded")
    standin.wait_for(2)
    page.goto(f"/transforms/{DOCS}")
    replace_code(page, LIVE_HANDLER)
    page.get_by_test_id("impact").click()
    result = page.get_by_test_id("impact-result")
    expect(result.get_by_test_id("impact-changed")).to_have_text("1")
    expect(result.get_by_test_id("impact-same")).to_have_text("1")
    expect(result.get_by_test_id("impact-failing")).to_have_text("0")
    expect(result).to_contain_text("Payment Made Live")
    shoot(page, "impact")
    assert "Payment Completed" in (server.workdir / "transforms" / f"{DOCS}.js").read_text()


def test_a_broken_save_keeps_the_last_good_version_live(
    page: Page, server: InProcessServer, standin: SegmentStandIn, shoot: Shoot
) -> None:
    before = server.versions()[DOCS]
    page.goto(f"/transforms/{DOCS}")
    replace_code(page, SYNTAX_ERROR)
    page.get_by_test_id("save").click()
    saved = page.get_by_test_id("save-result")
    expect(saved).to_contain_text("SyntaxError")
    expect(saved).to_contain_text(f"{before}, stays in service")
    shoot(page, "broken-save")
    assert server.versions()[DOCS] == before
    server.post(sample("payment.succeeded"))
    standin.wait_for(2)  # identify and the last good track
    assert messages_named(standin, "Payment Completed")


def test_a_good_save_goes_live(
    page: Page, server: InProcessServer, standin: SegmentStandIn
) -> None:
    page.goto(f"/transforms/{DOCS}")
    replace_code(page, LIVE_HANDLER)
    with server.reloading(DOCS):
        page.keyboard.press("Control+s")  # the shortcut saves
        expect(page.get_by_test_id("save-result")).to_contain_text("live")
    version = server.versions()[DOCS]
    expect(page.get_by_test_id("version")).to_have_text(str(version))
    server.post(sample("payment.succeeded"))
    server.wait_until(lambda: messages_named(standin, "Payment Made Live"), what="the new event")
    assert not messages_named(standin, "Payment Completed")


def test_a_failed_delivery_is_fixed_and_replayed_from_the_page(
    page: Page, server: InProcessServer, standin: SegmentStandIn, shoot: Shoot
) -> None:
    page.goto(f"/transforms/{DOCS}")
    replace_code(page, BROKEN_HANDLER)
    with server.reloading(DOCS):
        page.get_by_test_id("save").click()
        expect(page.get_by_test_id("save-result")).to_contain_text("live")
    server.post(sample("payment.succeeded"), webhook_id="msg_broken_once")
    server.wait_until(lambda: server.deliveries("failed"), what="a failed delivery")

    page.goto("/deliveries?status=failed")
    row = page.get_by_test_id("delivery-row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(DOCS)
    expect(row).to_contain_text("failed")
    shoot(page, "deliveries")
    row.get_by_role("link").first.click()
    expect(page.get_by_test_id("delivery-error")).to_contain_text("TypeError")
    failed_page = page.url

    page.goto(f"/transforms/{DOCS}")
    replace_code(page, LIVE_HANDLER)
    with server.reloading(DOCS):
        page.get_by_test_id("save").click()
        expect(page.get_by_test_id("save-result")).to_contain_text("live")

    page.goto(failed_page)
    page.get_by_test_id("replay").click()
    result = page.get_by_test_id("replay-result")
    expect(result).to_contain_text("Replayed")
    expect(result.get_by_test_id("status")).to_have_text("delivered", timeout=20_000)
    shoot(page, "replayed")
    (message,) = messages_named(standin, "Payment Made Live")
    assert message["userId"] == sample("payment.succeeded")["data"]["customer"]["customer_id"]


def test_an_older_version_is_compared_and_restored_from_the_history(
    page: Page, server: InProcessServer, standin: SegmentStandIn, shoot: Shoot
) -> None:
    original = server.versions()[DOCS]
    page.goto(f"/transforms/{DOCS}")
    replace_code(page, LIVE_HANDLER)
    with server.reloading(DOCS):
        page.get_by_test_id("save").click()
        expect(page.get_by_test_id("save-result")).to_contain_text("live")
    live = server.versions()[DOCS]
    rows = page.get_by_test_id("version-row")

    def both_kept() -> bool:  # the worker records a version within a second of loading it
        page.goto(f"/transforms/{DOCS}")
        return rows.count() == 2

    server.wait_until(both_kept, what="both versions in the history")
    expect(rows.get_by_test_id("version-hash")).to_have_text([str(live), str(original)])
    page.get_by_test_id("show-diff").click()  # from the older to the newer, by default
    diff = page.get_by_test_id("version-diff")
    expect(diff.locator(".remove").filter(has_text="Payment Completed")).to_have_count(1)
    expect(diff.locator(".add").filter(has_text="Payment Made Live")).to_have_count(1)
    page.get_by_test_id("version-history").scroll_into_view_if_needed()
    shoot(page, "history")

    older = page.locator(f'[data-testid="version-row"][data-version="{original}"]')
    with server.reloading(DOCS):
        older.get_by_test_id("restore").click()
        expect(page.get_by_test_id("save-result")).to_contain_text("Restored")
    expect(page.get_by_test_id("version")).to_have_text(str(original))
    expect(page.get_by_test_id("editor")).to_contain_text("Payment Completed")
    assert server.versions()[DOCS] == original
    server.post(sample("payment.succeeded"), webhook_id="msg_after_restore")
    server.wait_until(
        lambda: messages_named(standin, "Payment Completed"), what="the restored version's message"
    )
    assert not messages_named(standin, "Payment Made Live")


@pytest.mark.parametrize("extra_settings", [{"admin_token": "tok-console-1"}])
def test_with_an_admin_token_the_console_asks_for_it_first_and_logging_out_ends_it(
    page: Page, shoot: Shoot
) -> None:
    page.goto("/deliveries")
    expect(page).to_have_url(re.compile(r"/login\?next=/deliveries$"))
    page.get_by_test_id("token").fill("not the token")
    page.get_by_test_id("login").click()
    expect(page.get_by_test_id("login-error")).to_be_visible()
    shoot(page, "login")
    page.get_by_test_id("token").fill("tok-console-1")
    page.get_by_test_id("login").click()
    expect(page).to_have_url(re.compile(r"/deliveries$"))
    expect(page.get_by_role("heading", name="Deliveries")).to_be_visible()
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "dodo_console_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    # A copy of the cookie kept from before is refused too: the session ended in the store.
    page.context.add_cookies([cookie])
    page.goto("/deliveries")
    expect(page).to_have_url(re.compile(r"/login\?next=/deliveries$"))


def test_every_page_loads_without_errors_or_requests_elsewhere(
    page: Page, server: InProcessServer, standin: SegmentStandIn, shoot: Shoot
) -> None:
    """The `page` fixture fails the test on any script error, console error (a CSP violation
    is one) or off-origin request; this visits every kind of page."""
    server.post(sample("payment.succeeded"), webhook_id="msg_every_page")
    standin.wait_for(2)
    # Segment has answered; the results are stored a moment later.
    (delivery, *_) = server.wait_until(lambda: server.deliveries("delivered"), what="delivered")
    for path in (
        "/",
        "/transforms",
        f"/transforms/{DOCS}",
        "/deliveries",
        f"/deliveries/{delivery['id']}",
        f"/events/{delivery['event_id']}",
    ):
        page.goto(path)
        expect(page.locator("main")).to_be_visible()
        page.wait_for_load_state("networkidle")
    page.goto("/")
    expect(page.get_by_test_id("events-day")).to_have_text("1")
    shoot(page, "overview")
    page.goto("/transforms")
    expect(page.get_by_test_id("transform-row").filter(has_text=DOCS)).to_contain_text("delivered")
    shoot(page, "transforms")


def test_leaving_the_editor_with_unsaved_edits_asks_first(page: Page) -> None:
    page.goto(f"/transforms/{DOCS}")
    replace_code(page, LIVE_HANDLER)
    asked: list[str] = []
    page.on("dialog", lambda dialog: (asked.append(dialog.type), dialog.dismiss()))
    page.close(run_before_unload=True)  # as a closed tab or a link followed
    expect(page.get_by_test_id("editor")).to_contain_text("Payment Made Live")  # still open
    assert asked == ["beforeunload"]
    page.keyboard.press("Control+s")
    expect(page.get_by_test_id("save-result")).to_contain_text("live")
    with page.expect_event("close"):
        page.close(run_before_unload=True)  # saved: nothing to lose, nothing asked
    assert asked == ["beforeunload"]


def test_saving_code_whose_last_test_failed_asks_first(page: Page, server: InProcessServer) -> None:
    path = server.workdir / "transforms" / f"{DOCS}.js"
    before = path.read_text()
    page.goto(f"/transforms/{DOCS}")
    replace_code(page, BROKEN_HANDLER)
    page.get_by_test_id("run-test").click()
    expect(page.get_by_test_id("test-result").get_by_test_id("outcome")).to_have_text("error")
    asked: list[str] = []
    answer = {"accept": False}

    def on_dialog(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept() if answer["accept"] else dialog.dismiss()

    page.on("dialog", on_dialog)
    page.get_by_test_id("save").click()
    expect(page.get_by_test_id("save-result")).to_be_empty()
    assert len(asked) == 1 and "last test run of this code ended in an error" in asked[0]
    assert path.read_text() == before  # declined: not saved
    answer["accept"] = True
    with server.reloading(DOCS):
        page.get_by_test_id("save").click()
        expect(page.get_by_test_id("save-result")).to_contain_text("live")
    assert len(asked) == 2 and "nope.x" in path.read_text()
    replace_code(page, LIVE_HANDLER)  # other code than the failed test's: saved without asking
    with server.reloading(DOCS):
        page.get_by_test_id("save").click()
        expect(page.get_by_test_id("save-result")).to_contain_text("live")
    assert len(asked) == 2


def test_skipped_deliveries_are_hidden_until_asked_for(
    page: Page, server: InProcessServer, standin: SegmentStandIn
) -> None:
    server.post(sample("payment.succeeded"), webhook_id="msg_skipped_rows")
    server.wait_until(lambda: len(server.deliveries()) == 3, what="three deliveries")
    page.goto("/deliveries")
    rows = page.get_by_test_id("delivery-row")
    expect(rows).to_have_count(3)
    expect(rows.locator("visible=true")).to_have_count(2)
    expect(page.locator('[data-testid="delivery-row"][data-status="skipped"]')).to_be_hidden()
    expect(page.get_by_test_id("skipped-hidden")).to_have_text("1 skipped row hidden on this page.")
    track = rows.filter(has_text=DOCS)
    expect(track.get_by_test_id("delivery-message")).to_contain_text('track "Payment Completed"')
    page.get_by_test_id("show-skipped").check()
    expect(rows.locator("visible=true")).to_have_count(3)
    expect(page.get_by_test_id("skipped-hidden")).to_be_hidden()


def test_a_save_is_listed_in_the_history_at_once(page: Page, server: InProcessServer) -> None:
    """Not at the history's next refresh, seconds later."""
    original = server.versions()[DOCS]
    page.goto(f"/transforms/{DOCS}")
    rows = page.get_by_test_id("version-row")
    expect(rows).to_have_count(1)
    replace_code(page, LIVE_HANDLER)
    with server.reloading(DOCS):
        page.get_by_test_id("save").click()
        expect(page.get_by_test_id("save-result")).to_contain_text("live")
    live = server.versions()[DOCS]
    expect(rows.get_by_test_id("version-hash")).to_have_text(
        [str(live), str(original)], timeout=1500
    )


def test_a_restore_leaves_the_browser_on_a_page_a_reload_does_not_post_again(
    page: Page, server: InProcessServer
) -> None:
    original = server.versions()[DOCS]
    page.goto(f"/transforms/{DOCS}")
    replace_code(page, LIVE_HANDLER)
    with server.reloading(DOCS):
        page.get_by_test_id("save").click()
        expect(page.get_by_test_id("save-result")).to_contain_text("live")
    older = page.locator(f'[data-testid="version-row"][data-version="{original}"]')
    with server.reloading(DOCS):
        older.get_by_test_id("restore").click()
        expect(page.get_by_test_id("save-result")).to_contain_text("Restored")
    expect(page).to_have_url(re.compile(rf"/transforms/{DOCS}\?restored={original}$"))
    posts: list[str] = []
    page.on(
        "request", lambda request: posts.append(request.url) if request.method == "POST" else None
    )
    page.reload()
    expect(page.get_by_test_id("save-result")).to_contain_text("Restored")
    assert posts == []
