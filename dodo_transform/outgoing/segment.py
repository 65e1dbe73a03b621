"""What Segment's HTTP Tracking API accepts, and what it silently drops.

Segment answers 200 to almost anything and drops bad messages later, so the
only way to catch a mistake is to look before sending. `drops` lists what
Segment would drop (the pipeline holds such messages back); `advice_for` the
softer advice (naming, timestamps) that is only logged; `lint`, both, as
`dodo-transform test` shows them.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from functools import lru_cache
from typing import Any, Protocol
from urllib.parse import urlsplit

import orjson

SEGMENT_HOSTS = frozenset({"api.segment.io", "events.eu1.segmentapis.com"})
CALL_TYPES = frozenset({"track", "identify", "page", "screen", "group", "alias"})
MAX_MESSAGE_BYTES = 32 * 1024
# "Object Action" in Title Case: "Payment Completed", "Order Refunded".
_EVENT_NAME = re.compile(r"^[A-Z][A-Za-z0-9]*(?: [A-Z0-9][A-Za-z0-9]*)+$")


class _Request(Protocol):
    @property
    def url(self) -> str: ...
    @property
    def payload(self) -> Any: ...


@lru_cache(maxsize=256)
def is_segment_url(url: str) -> bool:
    return (urlsplit(url).hostname or "") in SEGMENT_HOSTS


@lru_cache(maxsize=256)
def call_type(url: str) -> str | None:
    """`track`, `identify`, ... or `batch` from a Segment URL's path; None when unknown."""
    path = urlsplit(url).path.rstrip("/")
    prefix, _, name = path.rpartition("/")
    if prefix == "/v1" and (name in CALL_TYPES or name == "batch"):
        return name
    return None


def dated(url: str, payload: Any, timestamp: str) -> Any:
    """The payload of a Segment call with `timestamp` (ISO 8601) on each message that has
    none: a message sent late (a backfill) then counts when its event happened, not when it
    was sent. Other requests are returned unchanged."""
    kind = call_type(url) if is_segment_url(url) else None
    if kind is None or not isinstance(payload, dict):
        return payload
    if kind != "batch":
        return payload if "timestamp" in payload else payload | {"timestamp": timestamp}
    batch = payload.get("batch")
    if not isinstance(batch, list):
        return payload
    return payload | {
        "batch": [
            item | {"timestamp": timestamp}
            if isinstance(item, dict) and "timestamp" not in item
            else item
            for item in batch
        ]
    }


def problems(kind: str, message: Any) -> list[str]:
    """Why Segment would silently drop this message of type `kind`; empty when it is fine."""
    if not isinstance(message, dict):
        return [f"the {kind} payload is not a JSON object"]
    found: list[str] = []
    if kind == "alias":
        if not message.get("userId") or not message.get("previousId"):
            found.append("alias needs both userId and previousId")
    elif not message.get("userId") and not message.get("anonymousId"):
        found.append(f"{kind} has neither userId nor anonymousId: Segment drops it")
    if kind == "track" and not (isinstance(message.get("event"), str) and message["event"]):
        found.append("track has no non-empty string `event`: Segment drops it")
    if kind == "group" and not message.get("groupId"):
        found.append("group has no groupId: Segment drops it")
    size = _encoded_size(message)
    if size > MAX_MESSAGE_BYTES:
        found.append(f"message is {size} bytes, over Segment's 32 KB limit")
    return found


def _encoded_size(message: dict[str, Any]) -> int:
    """The message's size as sent: compact UTF-8 JSON (orjson's, as the sender encodes it; the
    standard library's, escaped, for what orjson refuses, such as a lone surrogate)."""
    try:
        return len(orjson.dumps(message))
    except TypeError:
        return len(json.dumps(message, separators=(",", ":")).encode("utf-8"))


def advice(kind: str, message: Any) -> list[str]:
    """Softer warnings: naming conventions and timestamp format."""
    if not isinstance(message, dict):
        return []
    found: list[str] = []
    event = message.get("event")
    if kind == "track" and isinstance(event, str) and event and not _EVENT_NAME.match(event):
        found.append(
            f'event name {event!r} is not "Object Action" in Title Case (e.g. "Payment Completed")'
        )
    timestamp = message.get("timestamp")
    if timestamp is not None and not _is_iso8601(timestamp):
        found.append(f"timestamp {timestamp!r} is not ISO-8601; Segment will use the receive time")
    return found


def drops(url: str, payload: Any) -> list[str]:
    """Why Segment would silently drop this single call; empty for other destinations and for
    a handler-built `/v1/batch` (sent as written; `lint` checks its items)."""
    if not is_segment_url(url):
        return []
    kind = call_type(url)
    if kind is None:
        return [
            f"{urlsplit(url).path!r} is not a Segment API path "
            "(/v1/track, /v1/identify, /v1/page, /v1/screen, /v1/group, /v1/alias, /v1/batch)"
        ]
    return [] if kind == "batch" else problems(kind, payload)


def advice_for(url: str, payload: Any) -> list[str]:
    """Naming and timestamp advice for a single Segment call; empty elsewhere."""
    kind = call_type(url) if is_segment_url(url) else None
    return advice(kind, payload) if kind in CALL_TYPES else []


def lint(request: _Request) -> list[str]:
    """Every warning for one outgoing request; empty for requests not bound for Segment."""
    if is_segment_url(request.url) and call_type(request.url) == "batch":
        batch = request.payload.get("batch") if isinstance(request.payload, dict) else None
        if not isinstance(batch, list):
            return ["batch payload has no `batch` array"]
        return [
            f"batch item {index}: {warning}"
            for index, item in enumerate(batch)
            for warning in _item_warnings(item)
        ]
    return drops(request.url, request.payload) + advice_for(request.url, request.payload)


def _item_warnings(item: Any) -> list[str]:
    kind = item.get("type") if isinstance(item, dict) else None
    if kind not in CALL_TYPES:
        return ["has no valid `type` (track, identify, page, screen, group, alias)"]
    return problems(kind, item) + advice(kind, item)


def _is_iso8601(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def summary(method: str, url: str, payload: Any) -> str:
    """One request's message in a few words: `track "Payment Completed" cus_1` for Segment
    (its own message, also inside a batch of one), else the method and host (a path may hold
    a token)."""
    if not is_segment_url(url):
        return f"{method} {urlsplit(url).hostname or url}"
    kind = call_type(url) or "?"
    if kind == "batch" and isinstance(payload, dict) and len(payload.get("batch") or ()) == 1:
        payload = payload["batch"][0]
        kind = str(payload.get("type", kind)) if isinstance(payload, dict) else kind
    if not isinstance(payload, dict):
        return kind
    words = [kind]
    if isinstance(payload.get("event"), str):
        words.append(json.dumps(payload["event"], ensure_ascii=False))
    who = payload.get("userId") or payload.get("anonymousId")
    if who:
        words.append(str(who))
    return " ".join(words)
