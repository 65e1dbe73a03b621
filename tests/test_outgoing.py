"""The one request type, and the one rule for text that cannot be encoded: lone surrogates
become U+FFFD wherever text is encoded for someone else; nothing else changes."""

from __future__ import annotations

import json

import pytest

from dodo_transform.outgoing import OutgoingRequest, encode_json, well_formed, well_formed_json


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\ud83d Ada", "\ufffd Ada"),
        ("Ada \udc00", "Ada \ufffd"),
        ("\ud83d\ude00 pair", "\U0001f600 pair"),  # a pair held as two code points is joined
        ("\ude00\ud83d", "\ufffd\ufffd"),  # the wrong order is no pair
        ("José 😀", "José 😀"),
    ],
)
def test_lone_surrogates_become_the_replacement_character(text: str, expected: str) -> None:
    assert well_formed(text) == expected
    well_formed(text).encode("utf-8")


def test_well_formed_text_is_returned_as_is() -> None:
    text = "plain José"
    assert well_formed(text) is text


def test_json_with_a_lone_surrogate_encodes_as_well_formed_utf8() -> None:
    body = encode_json({"name": "\ud83d Ada", "\udc00key": ["x"]})
    assert json.loads(body.decode("utf-8")) == {"name": "\ufffd Ada", "\ufffdkey": ["x"]}


def test_a_request_with_a_lone_surrogate_encodes_and_shows() -> None:
    request = OutgoingRequest(
        "POST", "https://api.segment.io/v1/identify", {}, {"traits": {"name": "\ud83d Ada"}}
    )
    assert json.loads(request.encoded()) == {"traits": {"name": "\ufffd Ada"}}
    shown = request.redacted()
    assert shown["payload"] == {"traits": {"name": "\ufffd Ada"}}
    json.dumps(shown, ensure_ascii=False).encode("utf-8")  # printable, as the CLI prints it
    assert request.payload == {"traits": {"name": "\ud83d Ada"}}  # the request itself is kept


def test_well_formed_json_keeps_a_clean_value_itself() -> None:
    value = {"a": ["b", 1]}
    assert well_formed_json(value) is value
