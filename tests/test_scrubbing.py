"""The web edge's last net: every admin API answer without the service's secrets."""

from __future__ import annotations

import json

from dodo_transform.web.scrubbing import scrubbed_body


def test_a_json_answer_is_scrubbed_string_by_string() -> None:
    body = json.dumps(
        {"created_at": 1712345678.25, "url": "https://hooks.slack.com/T0/tok_12345678", "n": [1]}
    ).encode()
    shown = json.loads(scrubbed_body(body, "application/json", {"tok_12345678", "17123456"}))
    assert shown == {
        "created_at": 1712345678.25,
        "url": "https://hooks.slack.com/T0/[redacted]",
        "n": [1],
    }


def test_other_answers_are_scrubbed_as_text() -> None:
    body = scrubbed_body(b"token=tok_12345678;", "text/plain", {"tok_12345678"})
    assert body == b"token=[redacted];"
