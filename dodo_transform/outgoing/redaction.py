"""Redaction: what of a secret is never shown, and taking it out of what is.

The service knows its secrets (`Settings.secret_values`, `TransformSettings.secret_values`):
write keys, signing secrets, the admin token, credentials in headers, webhook URLs and values
read from `${NAME}`. What shows a person or a log anything a request, an error or a setting
may hold passes it through `scrub`/`scrub_json` with them; headers are shown with credentials'
values replaced by name (`redact_headers`). Values shorter than `MIN_SECRET_CHARS` are never
scrubbed: no secret is that short, and taking every "1" or "id" out would ruin what is shown.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson

from dodo_transform.outgoing.destination import destination_of

_SECRET_HEADER = re.compile(r"auth|key|secret|token|signature|cookie|password", re.IGNORECASE)
REDACTED = "[redacted]"
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
MIN_SECRET_CHARS = 8


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


def scrub_json_text(text: str, secrets: Collection[str]) -> str:
    """JSON text with `scrub` applied inside its strings (keys included) only: never to a
    number, which a short secret could cut in two, nor to the syntax. Linear, however deep
    the JSON is nested."""
    forms = _forms(frozenset(secrets))
    if not any(form in text for form in forms):
        return text
    return _JSON_STRING.sub(lambda found: scrub(found[0], forms), text)


@functools.lru_cache(maxsize=64)
def _forms(secrets: frozenset[str]) -> frozenset[str]:
    """Each secret as it is and as it appears inside a JSON string (escaped): worked out once
    per set of secrets, as a log line's fields are scrubbed with the same set every time."""
    return secrets | {json.dumps(secret)[1:-1] for secret in secrets}


def scrub_json(value: Any, secrets: Collection[str]) -> Any:
    """A JSON value with `scrub` applied to every string in it (keys included); a value JSON
    cannot hold (a log field's object) is taken as its text."""
    if not secrets:
        return value
    try:
        text = orjson.dumps(value, default=str).decode()  # a log line's fields, every line
    except TypeError:  # a lone surrogate or a huge integer: the standard library writes it
        text = json.dumps(value, ensure_ascii=False, default=str)
    hidden = scrub_json_text(text, secrets)
    return value if hidden is text else json.loads(hidden)


def redact_url(url: str) -> str:
    """`url` with its path and query hidden: a webhook URL's token lives there."""
    destination = destination_of(url)
    return f"{destination}/{REDACTED}" if destination else REDACTED


def url_secrets(url: str) -> set[str]:
    """What of a secret URL to keep out of anything shown: its path and query (Slack's,
    Discord's and Zapier's webhook URLs carry their token there), or the whole URL, and the
    user part (`user:password@`) of any."""
    parts = urlsplit(url)
    hidden = parts.path.lstrip("/") + (f"?{parts.query}" if parts.query else "")
    return secret_parts(hidden or url) | user_secrets(url)


def user_secrets(url: str) -> set[str]:
    """The user part of a URL (`user:password@`) and its password: secrets wherever a URL is."""
    parts = urlsplit(url)
    return secret_parts(parts.netloc.rpartition("@")[0]) | secret_parts(parts.password or "")
