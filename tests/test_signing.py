"""Standard Webhooks verification, including the library's sharp edges."""

from __future__ import annotations

import time

import pytest
import standardwebhooks

from dodo_transform import signing
from dodo_transform.errors import ConfigError, SignatureError

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER = signing.new_secret()
BODY = b'{"type": "payment.succeeded"}'


def test_sign_matches_the_spec_reference_vector() -> None:
    headers = signing.sign(
        SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", b'{"test": 2432232314}', 1614265330
    )
    assert headers["webhook-signature"] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_what_we_sign_the_reference_library_verifies() -> None:
    headers = signing.sign(SECRET, "msg_1", BODY)
    standardwebhooks.Webhook(SECRET).verify(BODY.decode(), headers)


def test_verify_returns_the_webhook_id() -> None:
    assert signing.Verifier([SECRET]).verify(BODY, signing.sign(SECRET, "msg_1", BODY)) == "msg_1"


def test_any_configured_secret_verifies_during_rotation() -> None:
    verifier = signing.Verifier([OTHER, SECRET])
    assert verifier.verify(BODY, signing.sign(SECRET, "msg_1", BODY)) == "msg_1"
    assert verifier.verify(BODY, signing.sign(OTHER, "msg_2", BODY)) == "msg_2"


def test_any_matching_entry_in_the_header_verifies() -> None:
    good = signing.sign(SECRET, "msg_1", BODY)
    good["webhook-signature"] = "v1a,ed25519stuff v1,AAAA " + good["webhook-signature"]
    assert signing.Verifier([SECRET]).verify(BODY, good) == "msg_1"


def headers_with(**changes: str) -> dict[str, str]:
    headers = signing.sign(SECRET, "msg_1", BODY)
    headers.update({name.replace("_", "-"): value for name, value in changes.items()})
    return headers


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, r"missing header\(s\): webhook-id, webhook-timestamp, webhook-signature"),
        (headers_with(webhook_signature="v1"), "malformed webhook-signature"),
        (headers_with(webhook_signature="nocomma"), "malformed webhook-signature"),
        (headers_with(webhook_signature="v1,!!!notbase64"), "malformed webhook-signature"),
        (headers_with(webhook_signature="v2,AAAA"), "no matching signature"),
        (headers_with(webhook_signature=" ".join(["v1,AAAA"] * 500)), "no matching signature"),
        (headers_with(webhook_signature="v1," + "A" * 20000), "too long"),
        (headers_with(webhook_timestamp="yesterday"), "not a Unix time"),
        (headers_with(webhook_timestamp="nan"), "not a Unix time"),
        (headers_with(webhook_timestamp="1e400"), "not a Unix time"),
        (headers_with(webhook_id="msg_other"), "no matching signature"),
    ],
)
def test_bad_signatures_are_refused_with_a_reason(headers: dict[str, str], reason: str) -> None:
    with pytest.raises(SignatureError, match=reason):
        signing.Verifier([SECRET]).verify(BODY, headers)


@pytest.mark.parametrize(("offset", "reason"), [(-600, "old"), (600, "future")])
def test_timestamps_outside_five_minutes_are_refused(offset: int, reason: str) -> None:
    headers = signing.sign(SECRET, "msg_1", BODY, int(time.time()) + offset)
    with pytest.raises(SignatureError, match=reason):
        signing.Verifier([SECRET]).verify(BODY, headers)


def test_a_body_signed_with_another_secret_is_refused() -> None:
    with pytest.raises(SignatureError, match="no matching signature"):
        signing.Verifier([SECRET]).verify(BODY, signing.sign(OTHER, "msg_1", BODY))


def test_non_utf8_bodies_are_verified_over_their_bytes() -> None:
    body = b'{"type": "\xff"}'
    verifier = signing.Verifier([SECRET])
    assert verifier.verify(body, signing.sign(SECRET, "msg_1", body)) == "msg_1"
    with pytest.raises(SignatureError):
        verifier.verify(body, signing.sign(OTHER, "msg_1", body))
    with pytest.raises(SignatureError, match="5 minutes"):
        verifier.verify(body, signing.sign(SECRET, "msg_1", body, int(time.time()) - 900))


@pytest.mark.parametrize("secrets", [[], ["whsec_"], ["whsec_%%%"]])
def test_unusable_secrets_are_config_errors(secrets: list[str]) -> None:
    with pytest.raises(ConfigError):
        signing.Verifier(secrets)
