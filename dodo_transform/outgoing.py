"""`OutgoingRequest`: one HTTP request, from the handler's outcome to the wire.

The same type is made by the engine (what the handler asked for), stored by
the store, rewritten by the sender (Segment endpoint, write key) and shown by
the web and CLI edges. It holds credentials exactly as they will be sent;
`redacted()` is the form for showing a person or a log, and only the edges
call it, so nothing in between can lose a header by accident.

Text that cannot be encoded: JavaScript strings may hold lone UTF-16
surrogates (`"\\ud83d Ada"` is valid JSON), and so may the payloads handlers
return. The store keeps them exactly (received bodies as raw bytes, requests
as ASCII-escaped JSON), so nothing is lost; whatever is encoded for someone
else, the wire or an API answer, goes through `well_formed`/`encode_json`,
which replace each lone surrogate with U+FFFD. Replacing one character of a
name beats losing the message, and the replacement is what every UTF-8
decoder would show anyway. Headers and URLs are not repaired but refused (see
`outbound/wire.py`): there a changed character changes where or as whom a
request goes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

_SECRET_HEADER = re.compile(r"auth|key|secret|token|signature|cookie|password", re.IGNORECASE)
REDACTED = "[redacted]"
# Shorter values are not scrubbed out of text: a secret is longer, and scrubbing "1" or "id"
# everywhere would make what is shown unreadable.
MIN_SECRET_CHARS = 6
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_SECONDS_PER_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def well_formed(text: str) -> str:
    """`text` with every lone surrogate replaced by U+FFFD, so that it encodes as UTF-8.

    A high and a low surrogate side by side are joined into the character they spell.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # UTF-16 pairs up surrogates that make a character; the decoder replaces the rest.
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def encode_json(value: Any) -> bytes:
    """`value` as compact JSON in well-formed UTF-8 (see the module docstring)."""
    return well_formed(json.dumps(value, ensure_ascii=False, separators=(",", ":"))).encode()


def well_formed_json(value: Any) -> Any:
    """A JSON value whose strings are all well-formed (`value` itself when they were)."""
    text = json.dumps(value, ensure_ascii=False)
    repaired = well_formed(text)
    return value if repaired is text else json.loads(repaired)


@dataclass(frozen=True)
class OutgoingRequest:
    method: str
    url: str
    headers: Mapping[str, str]
    payload: Any
    # The exact bytes to send when they were encoded already (a Segment batch is assembled
    # from messages encoded one by one); otherwise the payload is encoded on demand.
    body: bytes | None = field(default=None, compare=False, repr=False)

    def encoded(self) -> bytes:
        """The body as sent: the payload as UTF-8 JSON, unless exact bytes were given."""
        if self.body is not None:
            return self.body
        return encode_json(self.payload)

    def to_json(self) -> dict[str, Any]:
        """The stored form: everything, credentials included (see `redacted` for display)."""
        return {
            "method": self.method,
            "url": self.url,
            "headers": dict(self.headers),
            "payload": self.payload,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OutgoingRequest:
        return cls(
            method=str(data.get("method", "POST")),
            url=str(data["url"]),
            headers={str(k): str(v) for k, v in (data.get("headers") or {}).items()},
            payload=data.get("payload"),
        )

    def redacted(self) -> dict[str, Any]:
        """The form to show a person or a log: credentials in headers replaced, and every
        string well-formed, so that printing it cannot fail."""
        shown: dict[str, Any] = well_formed_json(
            self.to_json() | {"headers": redact_headers(self.headers)}
        )
        return shown


@lru_cache(maxsize=1024)
def destination_of(url: str) -> str:
    """The origin a request to `url` goes to, `scheme://host[:port]` (the port only when it
    is not the scheme's default): what names a destination in the store, the API and the
    metrics. Never the user part of a URL, which may hold a password; "" for no URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ""
    host = parts.hostname or ""
    if not host:
        return ""
    scheme = parts.scheme.lower()
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address
    default = {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != default else "")


def credentials_go_to(url: str, configured_url: str) -> bool:
    """Whether a request to `url` carries the credentials configured for `configured_url`:
    only one to the same destination (origin) does, never one a handler points elsewhere."""
    return bool(configured_url) and destination_of(url) == destination_of(configured_url)


def is_credential_header(name: str) -> bool:
    """Whether a header of this name carries a credential (Authorization, X-Api-Key, ...)."""
    return bool(_SECRET_HEADER.search(name))


def redact_headers(
    headers: Mapping[str, str], secrets: Collection[str] = frozenset()
) -> dict[str, str]:
    """Headers fit to show a person or a log: credentials replaced by `[redacted]`, by their
    name or because their value is among `secrets`."""
    return {
        name: REDACTED if is_credential_header(name) or value in secrets else value
        for name, value in headers.items()
    }


def secret_parts(value: str) -> set[str]:
    """What of a secret value to keep out of anything shown: the value, and the credential
    after an auth scheme (`Bearer re_123` -> also `re_123`, which an error may echo alone)."""
    parts = {value, *value.split(" ", 1)[1:]}
    return {part.strip() for part in parts if len(part.strip()) >= MIN_SECRET_CHARS}


def scrub(text: str, secrets: Collection[str]) -> str:
    """`text` with every occurrence of each of `secrets` replaced by `[redacted]`."""
    for secret in sorted(secrets, key=len, reverse=True):  # a longer one may hold a shorter
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def written_forms(secrets: Collection[str]) -> set[str]:
    """Each secret as written and as it appears inside a JSON string (quotes, backslashes and
    control characters escaped): what to scrub from JSON text."""
    return set(secrets) | {json.dumps(secret)[1:-1] for secret in secrets}


def scrub_json(value: Any, secrets: Collection[str]) -> Any:
    """A JSON value with `scrub` applied to every string in it (keys included)."""
    if not secrets:
        return value
    if isinstance(value, str):
        return scrub(value, secrets)
    if isinstance(value, list):
        return [scrub_json(item, secrets) for item in value]
    if isinstance(value, dict):
        return {scrub(str(k), secrets): scrub_json(v, secrets) for k, v in value.items()}
    return value


def redact_url(url: str) -> str:
    """`url` with its path and query hidden: a webhook URL's token lives there."""
    destination = destination_of(url)
    return f"{destination}/{REDACTED}" if destination else REDACTED


def url_secrets(url: str) -> set[str]:
    """What of a secret URL to keep out of anything shown: its path and query (Slack's,
    Discord's and Zapier's webhook URLs carry their token there), or the whole URL."""
    parts = urlsplit(url)
    hidden = parts.path.lstrip("/") + (f"?{parts.query}" if parts.query else "")
    return secret_parts(hidden or url)


def duration_seconds(text: str) -> float | None:
    """`"10s"`, `"1m"`, `"1.5h"` ... in seconds; None if `text` is not such a duration."""
    found = _DURATION.fullmatch(text.strip())
    if found is None:
        return None
    return float(found[1]) * _SECONDS_PER_UNIT[found[2]]


@dataclass(frozen=True)
class DeliveryPolicy:
    """How one transform's requests are delivered to a destination: the deadline of one
    attempt (connect, send and the whole answer), how many attempts and when, and the pace
    (requests per second, None: no limit of its own) and requests in flight at once."""

    timeout: float = 15.0
    max_attempts: int = 12
    retry_schedule: tuple[float, ...] = ()  # empty: capped exponential backoff with jitter
    rate: float | None = None
    concurrency: int = 16
