"""Segment-aware checks: what Segment would silently drop, and softer naming advice."""

from __future__ import annotations

from typing import Any

import pytest

from dodo_transform.outgoing import OutgoingRequest, segment
from dodo_transform.outgoing.redaction import redact_headers


def lint(url: str, payload: Any) -> list[str]:
    return segment.lint(OutgoingRequest("POST", url, {}, payload))


GOOD_TRACK = {
    "userId": "cus_1",
    "event": "Payment Completed",
    "timestamp": "2026-08-14T09:21:07.481233Z",
}


def test_a_good_track_call_has_no_warnings() -> None:
    assert lint("https://api.segment.io/v1/track", GOOD_TRACK) == []


def test_requests_elsewhere_are_not_linted() -> None:
    assert lint("https://hooks.example.com/v1/track", {}) == []


@pytest.mark.parametrize(
    ("url", "payload", "expected"),
    [
        (
            "https://api.segment.io/v1/track",
            {"event": "Payment Completed"},
            "neither userId nor anonymousId",
        ),
        ("https://api.segment.io/v1/track", {"userId": "u"}, "no non-empty string `event`"),
        (
            "https://api.segment.io/v1/track",
            {"userId": "u", "event": "payment_completed"},
            "Title Case",
        ),
        (
            "https://api.segment.io/v1/track",
            {"userId": "u", "event": "Paid", "timestamp": "yesterday"},
            "not ISO-8601",
        ),
        (
            "https://api.segment.io/v1/track",
            {"userId": "u", "event": "A B", "blob": "x" * 40_000},
            "over Segment's 32 KB limit",
        ),
        ("https://api.segment.io/v1/group", {"userId": "u"}, "group has no groupId"),
        (
            "https://api.segment.io/v1/alias",
            {"userId": "u"},
            "alias needs both userId and previousId",
        ),
        ("https://api.segment.io/v1/trak", {"userId": "u"}, "not a Segment API path"),
        ("https://events.eu1.segmentapis.com/v1/identify", "text", "not a JSON object"),
        (
            "https://api.segment.io/v1/batch",
            {"batch": [{"type": "track", "userId": "u"}]},
            "batch item 0: track has no non-empty string `event`",
        ),
        (
            "https://api.segment.io/v1/batch",
            {"batch": [{"userId": "u"}]},
            "batch item 0: has no valid `type`",
        ),
        ("https://api.segment.io/v1/batch", {}, "no `batch` array"),
    ],
)
def test_warnings(url: str, payload: Any, expected: str) -> None:
    assert any(expected in warning for warning in lint(url, payload)), lint(url, payload)


def test_redact_headers_hides_credentials_only() -> None:
    headers = {
        "Authorization": "Basic abc",
        "X-Api-Key": "k",
        "webhook-signature": "v1,x",
        "Content-Type": "application/json",
    }
    assert redact_headers(headers) == {
        "Authorization": "[redacted]",
        "X-Api-Key": "[redacted]",
        "webhook-signature": "[redacted]",
        "Content-Type": "application/json",
    }
