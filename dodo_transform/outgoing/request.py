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
`outgoing/wire.py`): there a changed character changes where or as whom a
request goes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from dodo_transform.outgoing.redaction import redact_headers

# One encoder for every call: `json.dumps` with options builds a new one each time, a
# measurable part of encoding the small messages a burst sends by the thousand.
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


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
    try:
        return orjson.dumps(value)  # several times quicker, and UTF-8 already
    except TypeError:  # what orjson refuses (a lone surrogate, a huge integer): the standard
        return well_formed(_COMPACT.encode(value)).encode()  # library writes it


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


def with_headers(headers: Mapping[str, str], added: Mapping[str, str]) -> dict[str, str]:
    """`headers` plus each of `added` whose name (in any case) is not among them."""
    present = {name.lower() for name in headers}
    return dict(headers) | {name: v for name, v in added.items() if name.lower() not in present}
