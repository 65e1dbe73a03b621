"""`OutgoingRequest`: one HTTP request, from the handler's outcome to the wire.

The same type is made by the engine (what the handler asked for), stored by
the store, rewritten by the sender (Segment endpoint, write key) and shown by
the web and CLI edges. It holds credentials exactly as they will be sent;
`redacted()` is the form for showing a person or a log, and only the edges
call it, so nothing in between can lose a header by accident.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_SECRET_HEADER = re.compile(r"auth|key|secret|token|signature|cookie|password", re.IGNORECASE)


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
        return json.dumps(self.payload, ensure_ascii=False).encode("utf-8")

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
        """The form to show a person or a log: credentials in headers replaced."""
        return self.to_json() | {"headers": redact_headers(self.headers)}


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers fit to show a person or a log: credentials replaced by `[redacted]`."""
    return {
        name: "[redacted]" if _SECRET_HEADER.search(name) else value
        for name, value in headers.items()
    }
