"""Standard Webhooks signatures, behind one small interface.

`standardwebhooks` does the work. Its sharp edges are mapped here: it raises
`ValueError` for a signature entry without a comma or with bad base64,
`UnicodeDecodeError` for a non-UTF-8 body, and different exceptions for bad
secrets. Every failure to verify becomes `SignatureError` with a reason that
names no secret. A non-UTF-8 body cannot pass through the library at all, so
its signature is checked here over the raw bytes, the same HMAC the library
computes; a verified one is then refused as unusable (400), not as unsigned.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping

import standardwebhooks

from dodo_transform.errors import ConfigError, SignatureError

TOLERANCE_SECONDS = 5 * 60  # what standardwebhooks enforces; kept here for our own check
_MAX_SIGNATURE_HEADER = 16 * 1024


def new_secret() -> str:
    """A fresh `whsec_` secret of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _secret_bytes(secret: str) -> bytes:
    try:
        key = base64.b64decode(secret.removeprefix("whsec_") + "==", validate=False)
    except (binascii.Error, ValueError):
        raise ConfigError("a webhook secret is not valid base64 after `whsec_`") from None
    if not key:
        raise ConfigError("a webhook secret is empty")
    return key


class Verifier:
    """Checks Standard Webhooks signatures against every configured secret."""

    def __init__(self, secrets_: list[str]) -> None:
        if not secrets_:
            raise ConfigError("no webhook secret configured")
        self._keys = [_secret_bytes(secret) for secret in secrets_]
        self._hooks = [standardwebhooks.Webhook(key) for key in self._keys]

    def verify(self, body: bytes, headers: Mapping[str, str]) -> str:
        """Return the webhook-id of a verified request; raise `SignatureError` otherwise."""
        wanted = {name: headers.get(name, "") for name in _HEADERS}
        if not all(wanted.values()):
            missing = ", ".join(name for name, value in wanted.items() if not value)
            raise SignatureError(f"missing header(s): {missing}")
        if len(wanted["webhook-signature"]) > _MAX_SIGNATURE_HEADER:
            raise SignatureError("webhook-signature header is too long")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            self._verify_raw(body, wanted)
            return wanted["webhook-id"]
        for hook in self._hooks:
            try:
                hook.verify(text, wanted, json_parse=False)
                return wanted["webhook-id"]
            except standardwebhooks.WebhookVerificationError as error:
                reason = str(error)
            except (ValueError, TypeError, OverflowError):
                reason = "malformed webhook-signature header (expected `v1,<base64>` entries)"
            if "timestamp" in reason or "Signature Headers" in reason:
                break  # the same for every secret
        raise SignatureError(_explain(reason))

    def _verify_raw(self, body: bytes, headers: Mapping[str, str]) -> None:
        _check_timestamp(headers["webhook-timestamp"])
        offered = []
        for entry in headers["webhook-signature"].split(" "):
            version, _, value = entry.partition(",")
            if version == "v1":
                try:
                    offered.append(base64.b64decode(value, validate=True))
                except (binascii.Error, ValueError):
                    continue
        for key in self._keys:
            expected = _mac(key, headers["webhook-id"], headers["webhook-timestamp"], body)
            if any(hmac.compare_digest(expected, mac) for mac in offered):
                return
        raise SignatureError("no matching signature")


_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


def _check_timestamp(value: str) -> None:
    try:
        stamp = float(value)
    except ValueError:
        raise SignatureError("webhook-timestamp is not a Unix time") from None
    if not abs(time.time() - stamp) <= TOLERANCE_SECONDS:  # also false for NaN
        raise SignatureError("webhook-timestamp is more than 5 minutes away from now")


def _explain(reason: str) -> str:
    return {
        "Message timestamp too old": "webhook-timestamp is more than 5 minutes old",
        "Message timestamp too new": "webhook-timestamp is more than 5 minutes in the future",
        "Invalid Signature Headers": "webhook-timestamp is not a Unix time",
        "No matching signature found": "no matching signature",
    }.get(reason, reason)


def sign(secret: str, webhook_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The three headers Dodo would send with `body` (for `dodo-transform send` and tests).

    Signs the raw bytes, as Standard Webhooks specifies, so any body can be signed.
    """
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    mac = _mac(_secret_bytes(secret), webhook_id, stamp, body)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }


def _mac(key: bytes, webhook_id: str, timestamp: str, body: bytes) -> bytes:
    return hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
