"""Standard Webhooks signatures, behind one small interface.

We verify with our own HMAC-SHA256 over the raw body bytes, one path for every body, and keep
`standardwebhooks` as the reference the tests hold us to (`tests/test_signing.py` checks that
we accept what its `Webhook.sign` produces and never accept what it refuses). We chose this over
calling the library because the library cannot serve as the one path: it decodes the body as
UTF-8 (a correctly signed non-UTF-8 body raises `UnicodeDecodeError`, and must reach the caller
as verified so it is refused as unusable, 400, not as unsigned), it reports failures only as
English messages on one exception type, its clock is not injectable, and it accepts a timestamp
such as `1700000000.5` or ` +1700000000` while signing `floor()` of it, so the header is not
what was signed. Our own path is also the cheap one the hot path wants: one `hmac.digest` per
secret, compared with `hmac.compare_digest`.

The rules, those of Standard Webhooks: the signed content is `{webhook-id}.{webhook-timestamp}.`
followed by the raw body; the secret is base64 after an optional `whsec_` prefix (several may be
configured, for rotation); `webhook-signature` is a space-separated list of `<version>,<value>`
entries and a request verifies if any `v1` entry, base64 of the MAC, matches for any secret;
`webhook-timestamp` is integer Unix seconds within 5 minutes of now either way.

Where we are stricter than the library, on purpose: the timestamp must be plain ASCII digits
with no sign, spaces, fraction, exponent or leading zero, at most 12 of them; every entry of the
signature header must be well formed (`v1,` followed by strict base64, or another version with
exactly one comma), wherever it stands, where the library only trips on malformed entries it
reaches before a match.

Every failure to verify is a `SignatureError` whose reason names no secret and quotes no header.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import secrets
import time
from collections.abc import Callable, Mapping

from dodo_transform.errors import ConfigError, SignatureError

TOLERANCE_SECONDS = 5 * 60  # the reference libraries' skew, both ways
_MAX_SIGNATURE_HEADER = 16 * 1024
_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
# Unix seconds are 10 digits until 2286; 12 leave room and keep int() cheap.
_TIMESTAMP = re.compile(r"[1-9][0-9]{0,11}")

_MALFORMED = "malformed webhook-signature header (expected `v1,<base64>` entries)"


def new_secret() -> str:
    """A fresh `whsec_` secret of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _secret_bytes(secret: str) -> bytes:
    # Decoded as standardwebhooks decodes it (lenient, padding added), so a secret string
    # means the same key here as in Dodo's and the reference libraries.
    try:
        key = base64.b64decode(secret.removeprefix("whsec_") + "==", validate=False)
    except (binascii.Error, ValueError):
        raise ConfigError("a webhook secret is not valid base64 after `whsec_`") from None
    if not key:
        raise ConfigError("a webhook secret is empty")
    return key


def malformed(secret: str) -> bool:
    """Whether a secret is not the strict base64 Dodo's dashboard shows (`whsec_` optional).

    It is still used as decoded leniently, as the reference libraries do; but such a text
    is almost always a paste gone wrong, and every webhook would be refused."""
    return re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", secret.removeprefix("whsec_")) is None


# The modes of Dodo's two webhook endpoints, each with its own signing secret.
LIVE = "live"
TEST = "test"


class Verifier:
    """Checks Standard Webhooks signatures against every configured secret.

    `clock` gives the current Unix time for the 5-minute window (injectable for tests).
    """

    def __init__(
        self,
        secrets_: list[str],
        *,
        test_secrets: list[str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`secrets_` are the live endpoint's, `test_secrets` the test-mode endpoint's: the
        one that verifies a webhook says which mode it came from."""
        if not secrets_ and not test_secrets:
            raise ConfigError("no webhook secret configured")
        self._keys = [(_secret_bytes(secret), LIVE) for secret in secrets_]
        self._keys += [(_secret_bytes(secret), TEST) for secret in test_secrets or ()]
        self._clock = clock

    def verify(self, body: bytes, headers: Mapping[str, str]) -> str:
        """Return the webhook-id of a verified request; raise `SignatureError` otherwise.

        The body is checked as raw bytes, whatever its encoding.
        """
        return self.verified(body, headers)[0]

    def verified(self, body: bytes, headers: Mapping[str, str]) -> tuple[str, str]:
        """(webhook-id, mode) of a verified request, the mode `live` or `test` as the secret
        that verified it; raise `SignatureError` otherwise."""
        webhook_id, timestamp, signature = _required_headers(headers)
        _check_timestamp(timestamp, self._clock())
        offered = _offered_macs(signature)
        signed = _signed_prefix(webhook_id, timestamp) + body
        for key, mode in self._keys:
            expected = hmac.digest(key, signed, "sha256")
            if any(hmac.compare_digest(expected, mac) for mac in offered):
                return webhook_id, mode
        raise SignatureError("no matching signature")


def _required_headers(headers: Mapping[str, str]) -> tuple[str, str, str]:
    webhook_id, timestamp, signature = (headers.get(name, "") for name in _HEADERS)
    if not (webhook_id and timestamp and signature):
        missing = ", ".join(name for name in _HEADERS if not headers.get(name, ""))
        raise SignatureError(f"missing header(s): {missing}")
    if len(signature) > _MAX_SIGNATURE_HEADER:
        raise SignatureError("webhook-signature header is too long")
    return webhook_id, timestamp, signature


def _check_timestamp(value: str, now: float) -> None:
    if not _TIMESTAMP.fullmatch(value):
        raise SignatureError("webhook-timestamp is not a Unix time")
    stamp = int(value)
    minutes = TOLERANCE_SECONDS // 60
    if stamp < now - TOLERANCE_SECONDS:
        raise SignatureError(f"webhook-timestamp is more than {minutes} minutes old")
    if stamp > now + TOLERANCE_SECONDS:
        raise SignatureError(f"webhook-timestamp is more than {minutes} minutes in the future")


def _offered_macs(header: str) -> list[bytes]:
    """The MACs of the header's `v1` entries; other versions (`v1a` is ed25519) are skipped."""
    macs = []
    for entry in header.split(" "):
        version, comma, value = entry.partition(",")
        if not comma or "," in value:
            raise SignatureError(_MALFORMED)
        if version != "v1":
            continue
        try:
            macs.append(base64.b64decode(value, validate=True))
        except binascii.Error:
            raise SignatureError(_MALFORMED) from None
    return macs


def _signed_prefix(webhook_id: str, timestamp: str) -> bytes:
    try:
        return f"{webhook_id}.{timestamp}.".encode()
    except UnicodeEncodeError:  # a lone surrogate: not from HTTP, but the Mapping allows it
        raise SignatureError("webhook-id is not valid text") from None


def sign(secret: str, webhook_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The three headers Dodo would send with `body` (for `dodo-transform send` and tests).

    Signs the raw bytes, as Standard Webhooks specifies, so any body can be signed.
    """
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    mac = hmac.digest(_secret_bytes(secret), f"{webhook_id}.{stamp}.".encode() + body, "sha256")
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }
