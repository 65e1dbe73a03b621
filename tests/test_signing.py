"""Standard Webhooks verification, held to the `standardwebhooks` reference library."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime

import pytest
import standardwebhooks
from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_verify_accepts_the_spec_reference_vector() -> None:
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    verifier = signing.Verifier([SECRET], clock=lambda: 1614265330.0)
    assert verifier.verify(b'{"test": 2432232314}', headers) == "msg_p5jXN8AQM9LWM0D4loKWxJek"


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


# The table below is built when tests are collected, maybe minutes before they run: its
# headers are signed at a fixed time and checked with a clock stopped there.
SIGNED_AT = 1_700_000_000


def headers_with(**changes: str) -> dict[str, str]:
    headers = signing.sign(SECRET, "msg_1", BODY, SIGNED_AT)
    headers.update({name.replace("_", "-"): value for name, value in changes.items()})
    return headers


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, r"missing header\(s\): webhook-id, webhook-timestamp, webhook-signature"),
        (headers_with(webhook_id=""), r"missing header\(s\): webhook-id$"),
        (headers_with(webhook_signature="v1"), "malformed webhook-signature"),
        (headers_with(webhook_signature="nocomma"), "malformed webhook-signature"),
        (headers_with(webhook_signature="v1,!!!notbase64"), "malformed webhook-signature"),
        (headers_with(webhook_signature="v1,AAAA  v1,AAAA"), "malformed webhook-signature"),
        (headers_with(webhook_signature="v1a,a,b"), "malformed webhook-signature"),
        (headers_with(webhook_signature="v2,AAAA"), "no matching signature"),
        (headers_with(webhook_signature="v1,"), "no matching signature"),
        (headers_with(webhook_signature=" ".join(["v1,AAAA"] * 500)), "no matching signature"),
        (headers_with(webhook_signature="v1," + "A" * 20000), "too long"),
        (headers_with(webhook_timestamp="yesterday"), "not a Unix time"),
        (headers_with(webhook_timestamp="nan"), "not a Unix time"),
        (headers_with(webhook_timestamp="1e400"), "not a Unix time"),
        (headers_with(webhook_id="msg_other"), "no matching signature"),
        (headers_with(webhook_id="msg_\ud800"), "webhook-id is not valid text"),
    ],
)
def test_bad_signatures_are_refused_with_a_reason(headers: dict[str, str], reason: str) -> None:
    with pytest.raises(SignatureError, match=reason) as caught:
        signing.Verifier([SECRET], clock=lambda: float(SIGNED_AT)).verify(BODY, headers)
    assert SECRET.removeprefix("whsec_") not in str(caught.value)


def test_a_malformed_entry_is_refused_even_after_a_matching_one() -> None:
    """Stricter than the library, which only trips on malformed entries before the match."""
    headers = signing.sign(SECRET, "msg_1", BODY)
    headers["webhook-signature"] += " garbage"
    with pytest.raises(SignatureError, match="malformed webhook-signature"):
        signing.Verifier([SECRET]).verify(BODY, headers)


@pytest.mark.parametrize(("offset", "reason"), [(-600, "old"), (600, "future")])
def test_timestamps_outside_five_minutes_are_refused(offset: int, reason: str) -> None:
    headers = signing.sign(SECRET, "msg_1", BODY, int(time.time()) + offset)
    with pytest.raises(SignatureError, match=reason):
        signing.Verifier([SECRET]).verify(BODY, headers)


NOW = 1_700_000_000


@pytest.mark.parametrize("offset", [-signing.TOLERANCE_SECONDS, 0, signing.TOLERANCE_SECONDS])
def test_timestamps_up_to_five_minutes_either_way_verify(offset: int) -> None:
    verifier = signing.Verifier([SECRET], clock=lambda: float(NOW))
    assert verifier.verify(BODY, signing.sign(SECRET, "msg_1", BODY, NOW + offset)) == "msg_1"


@pytest.mark.parametrize(
    ("offset", "reason"),
    [
        (-signing.TOLERANCE_SECONDS - 1, "more than 5 minutes old"),
        (signing.TOLERANCE_SECONDS + 1, "more than 5 minutes in the future"),
    ],
)
def test_one_second_past_the_tolerance_is_refused(offset: int, reason: str) -> None:
    verifier = signing.Verifier([SECRET], clock=lambda: float(NOW))
    with pytest.raises(SignatureError, match=reason):
        verifier.verify(BODY, signing.sign(SECRET, "msg_1", BODY, NOW + offset))


def mac_entry(secret: str, webhook_id: str, timestamp: str, body: bytes) -> str:
    """A `v1` entry over exactly these header texts, computed independently of `signing`."""
    key = base64.b64decode(secret.removeprefix("whsec_") + "==")
    mac = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


@pytest.mark.parametrize(
    "template",
    [
        "{}.5",  # the spec says integer seconds; the library signs floor() of it
        "{}.0",
        "{}e0",
        "+{}",
        "-{}",
        " {}",
        "{} ",
        "{}\n",
        "0{}",
        "{}_",
        "1{}000",  # 14 digits
        "9" * 5000 + "{}",
        "\u0661{}",  # ARABIC-INDIC DIGIT ONE: int() and float() would take it
    ],
)
def test_only_plain_integer_timestamps_verify(template: str) -> None:
    """Refused even with valid signatures over both the literal text and its integer part."""
    stamp = str(int(time.time()))
    text = template.format(stamp)
    headers = signing.sign(SECRET, "msg_1", BODY, int(stamp))
    headers["webhook-signature"] += " " + mac_entry(SECRET, "msg_1", text, BODY)
    headers["webhook-timestamp"] = text
    with pytest.raises(SignatureError, match="webhook-timestamp is not a Unix time"):
        signing.Verifier([SECRET]).verify(BODY, headers)


def test_a_body_signed_with_another_secret_is_refused() -> None:
    with pytest.raises(SignatureError, match="no matching signature"):
        signing.Verifier([SECRET]).verify(BODY, signing.sign(OTHER, "msg_1", BODY))


def test_non_utf8_bodies_are_verified_over_their_bytes() -> None:
    """The library cannot take these at all; the caller refuses a verified one as 400."""
    body = b'{"type": "\xff"}'
    verifier = signing.Verifier([SECRET])
    assert verifier.verify(body, signing.sign(SECRET, "msg_1", body)) == "msg_1"
    with pytest.raises(SignatureError, match="no matching signature"):
        verifier.verify(body, signing.sign(OTHER, "msg_1", body))
    with pytest.raises(SignatureError, match="5 minutes old"):
        verifier.verify(body, signing.sign(SECRET, "msg_1", body, int(time.time()) - 900))


@pytest.mark.parametrize("secrets", [[], ["whsec_"], ["whsec_%%%"], ["whsec_\u00e9"]])
def test_unusable_secrets_are_config_errors(secrets: list[str]) -> None:
    with pytest.raises(ConfigError):
        signing.Verifier(secrets)


# Against the reference library. The tolerance boundary is left out of the drawn offsets: the
# two sides read the clock at different instants.

KEYS = st.binary(min_size=24, max_size=64).map(
    lambda key: "whsec_" + base64.b64encode(key).decode()
)
OFFSETS = st.integers(-10_000, 10_000).filter(lambda n: abs(abs(n) - signing.TOLERANCE_SECONDS) > 5)


def library_accepts(secrets: list[str], body: bytes, headers: dict[str, str]) -> bool:
    for secret in secrets:
        try:
            standardwebhooks.Webhook(secret).verify(body, headers, json_parse=False)
        except (standardwebhooks.WebhookVerificationError, ValueError):
            continue  # the library's ValueErrors include UnicodeDecodeError and binascii.Error
        return True
    return False


def we_accept(secrets: list[str], body: bytes, headers: dict[str, str]) -> bool:
    try:
        signing.Verifier(secrets).verify(body, headers)
    except SignatureError:
        return False
    return True


@settings(max_examples=300, deadline=None)
@given(
    signer=KEYS,
    verifiers=st.lists(KEYS, max_size=2),
    webhook_id=st.text(min_size=1),
    sent=st.text(),
    received=st.text(),
    offset=OFFSETS,
    prefix=st.lists(st.sampled_from(["v1a,ed25519stuff", "v1,AAAA", "v2,AAAA"]), max_size=2),
)
def test_we_accept_exactly_what_the_library_accepts_of_what_it_signs(
    signer: str,
    verifiers: list[str],
    webhook_id: str,
    sent: str,
    received: str,
    offset: int,
    prefix: list[str],
) -> None:
    """`received` is usually a different body; `verifiers` may or may not hold the signer."""
    moment = datetime.fromtimestamp(time.time() + offset, tz=UTC)
    entry = standardwebhooks.Webhook(signer).sign(webhook_id, moment, sent)
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": " ".join([*prefix, entry]),
    }
    for body in (sent, received):
        for secrets in ([signer, *verifiers], verifiers or [signer]):
            verdict = library_accepts(secrets, body.encode(), headers)
            assert we_accept(secrets, body.encode(), headers) == verdict


def timestamp_texts(now: int) -> st.SearchStrategy[str]:
    plain = st.sampled_from([now, now - 60, now + 60, now - 3600, now + 3600]).map(str)
    mangled = st.builds(
        lambda before, stamp, after: before + stamp + after,
        st.sampled_from(["", " ", "+", "-", "0", "\u0661"]),
        plain,
        st.sampled_from(["", ".5", ".0", " ", "\n", "e0", "_0"]),
    )
    return st.one_of(plain, mangled, st.text(max_size=20))


@settings(max_examples=300, deadline=None)
@given(data=st.data(), webhook_id=st.text(min_size=1, max_size=20), body=st.text(max_size=50))
def test_we_never_accept_what_the_library_refuses(
    data: st.DataObject, webhook_id: str, body: str
) -> None:
    """Arbitrary timestamps and signature headers, with good signatures mixed in."""
    now = int(time.time())
    timestamp = data.draw(timestamp_texts(now))
    integer_part = str(int(float(timestamp))) if _is_float(timestamp) else str(now)
    raw = body.encode()
    good = [mac_entry(SECRET, webhook_id, text, raw) for text in (timestamp, integer_part)]
    entries = st.one_of(
        st.sampled_from(good),
        st.sampled_from(["v1a,ed25519stuff", "v1,", "v1", "", "v1,a,b", "garbage"]),
        st.builds(
            "{},{}".format,
            st.sampled_from(["v1", "v1a", "v2", ""]),
            st.text(alphabet="ABCDabcd0123+/=!, ", max_size=12),
        ),
    )
    signature = " ".join(data.draw(st.lists(entries, min_size=1, max_size=4)))
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": signature,
    }
    if we_accept([SECRET], raw, headers):
        assert library_accepts([SECRET], raw, headers)


def _is_float(text: str) -> bool:
    try:
        return abs(float(text)) < 1e12
    except ValueError:
        return False


def test_the_secret_that_verifies_says_the_mode() -> None:
    """One service takes Dodo's live and test-mode endpoints, each with its own secret."""
    verifier = signing.Verifier([SECRET], test_secrets=[OTHER])
    assert verifier.verified(BODY, signing.sign(SECRET, "msg_live", BODY)) == ("msg_live", "live")
    assert verifier.verified(BODY, signing.sign(OTHER, "msg_test", BODY)) == ("msg_test", "test")
    with pytest.raises(SignatureError):
        verifier.verified(BODY, signing.sign(signing.new_secret(), "msg_3", BODY))
    test_only = signing.Verifier([], test_secrets=[OTHER])
    assert test_only.verified(BODY, signing.sign(OTHER, "m", BODY)) == ("m", "test")
    with pytest.raises(ConfigError):
        signing.Verifier([], test_secrets=[])
