"""The webhook route in process: the plain ASGI path answers as the FastAPI route did, the body
check refuses exactly what the standard library's parse refuses, and only POST reaches it."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st

from dodo_transform import signing
from dodo_transform.errors import PayloadError
from dodo_transform.logs import RATE_LIMITED_LOGGERS, RateLimit
from dodo_transform.service import build_service
from dodo_transform.settings import load_settings
from dodo_transform.testing import SECRET
from dodo_transform.transforms.event import Event
from dodo_transform.web.ingest import event_type, refused, request_headers


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FastAPI]:
    (tmp_path / "transforms").mkdir()
    settings = load_settings(
        transforms=tmp_path / "transforms",
        data_dir=tmp_path / "data",
        webhook_secret=SECRET,
        max_body_bytes=4096,
    )
    service = build_service(settings)
    try:
        yield service.app
    finally:
        assert service.intake is not None
        service.intake.close()
        service.store.close()


def send(app: FastAPI, *requests: tuple[str, bytes, dict[str, str]]) -> list[httpx.Response]:
    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://relay") as client:
            return [
                await client.request(method, "/webhooks/dodo", content=body, headers=headers)
                for method, body, headers in requests
            ]

    return asyncio.run(go())


BODY = json.dumps({"type": "payment.succeeded", "data": {"n": 1}}).encode()


def test_a_stored_webhook_answers_its_id_and_a_redelivery_answers_duplicate(app: FastAPI) -> None:
    headers = signing.sign(SECRET, "msg_once", BODY)
    first, again = send(app, ("POST", BODY, headers), ("POST", BODY, headers))
    assert first.status_code == again.status_code == 200
    assert first.headers["content-type"] == "application/json"
    assert first.json() == {"id": 1, "duplicate": False}
    assert again.json() == {"id": 1, "duplicate": True}


@pytest.mark.parametrize(
    ("body", "headers", "status", "reason"),
    [
        (BODY, {"webhook-id": "msg_x"}, 401, "signature"),
        (b"[1, 2]", None, 400, "payload"),
        (b'{"type": 5}', None, 400, "payload"),
        (b'{"type": "x", "pad": "' + b"x" * 5000 + b'"}', None, 413, "too_large"),
    ],
    ids=["unsigned", "not an object", "type not text", "too large"],
)
def test_refusals_keep_their_status_and_json(
    app: FastAPI, body: bytes, headers: dict[str, str] | None, status: int, reason: str
) -> None:
    (response,) = send(app, ("POST", body, headers or signing.sign(SECRET, "msg_r", body)))
    assert response.status_code == status
    assert response.json()["reason"] == reason
    assert response.json()["error"]


def test_a_bad_signature_is_a_warning_pointing_at_the_secret_and_quoting_nothing_sent(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    headers = signing.sign("whsec_" + "QUJD" * 8, "msg_wrong", BODY)  # signed with another secret
    with caplog.at_level(logging.INFO):
        send(app, ("POST", BODY, headers))
    (line,) = [r for r in caplog.records if r.name.startswith("dodo_transform.ingest")]
    assert line.levelno == logging.WARNING
    assert "check DODO_WEBHOOK_SECRET against the signing secret in Dodo's dashboard" in (
        line.getMessage()
    )
    assert "(Developer > Webhooks > the endpoint)" in line.getMessage()
    assert line.error == "signature not verified: no matching signature"  # type: ignore[attr-defined]
    for sent in (
        SECRET,
        headers["webhook-signature"],
        headers["webhook-signature"][3:],
        "succeeded",
    ):
        assert sent not in caplog.text and sent not in str(vars(line))


def test_signature_warnings_are_records_on_a_rate_limited_logger(
    app: FastAPI, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not `logs.info`'s fast lines, which no filter sees: a flood of forged webhooks is cut to
    the rate limit `logs.setup` puts on the logger."""
    assert refused.name in RATE_LIMITED_LOGGERS
    monkeypatch.setattr(refused, "filters", [RateLimit(per_window=3)])
    with caplog.at_level(logging.INFO):
        answers = send(app, *[("POST", BODY, {"webhook-id": f"msg_{n}"}) for n in range(20)])
    assert {answer.status_code for answer in answers} == {401}
    assert len([r for r in caplog.records if r.name == refused.name]) == 3


def test_other_methods_get_405_from_the_router(app: FastAPI) -> None:
    (response,) = send(app, ("GET", b"", {}))
    assert response.status_code == 405


def test_the_first_of_a_repeated_header_counts() -> None:
    raw = [
        (b"webhook-id", b"msg_first"),
        (b"x-other", b"1"),
        (b"webhook-id", b"msg_second"),
        (b"content-length", b"12"),
    ]
    assert request_headers(raw) == {"webhook-id": "msg_first", "content-length": "12"}


def standard_verdict(body: bytes) -> str | None:
    try:
        return Event.from_body(body).event_type
    except PayloadError:
        return None


def fast_verdict(body: bytes) -> str | None:
    try:
        return event_type(body)
    except PayloadError:
        return None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)


@given(
    st.one_of(
        st.binary(max_size=200),
        json_values.map(lambda value: json.dumps(value).encode()),
        st.dictionaries(st.sampled_from(["type", "data", "x"]), json_values).map(
            lambda value: json.dumps(value).encode()
        ),
    )
)
def test_the_body_check_agrees_with_the_standard_library(body: bytes) -> None:
    assert fast_verdict(body) == standard_verdict(body)


@pytest.mark.parametrize(
    "body",
    [
        b'{"type": "x", "n": NaN}',
        b'{"type": "x", "n": 1e999}',
        b'{"type": "\\ud800"}',
        b'{"type": "x", "n": ' + b"9" * 400 + b"}",
        b'{"type": "x", "n": ' + b"9" * 5000 + b"}",
        b'\xef\xbb\xbf{"type": "x"}',
        b'{"type": "\xc3\x28"}',
        b'{"type": "a", "type": "b"}',
        b'{"type": "x", "a": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    ],
    ids=[
        "NaN",
        "infinity",
        "lone surrogate",
        "long integer",
        "huge integer",
        "BOM",
        "not UTF-8",
        "repeated key",
        "deep",
    ],
)
def test_bodies_orjson_and_json_read_differently_get_the_old_verdict(body: bytes) -> None:
    assert fast_verdict(body) == standard_verdict(body)
