"""Segment messages: what each stored request becomes inside a `/v1/batch` call.

Every message gets the `type` its handler's URL names, a deterministic
`messageId` (so a retry of the same message is dropped by Segment's dedup and
different messages never collide) and `context.library`, unless the handler
set them. Batches stay under Segment's limits with margin, as its SDKs do.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from dodo_transform import __version__
from dodo_transform.outgoing import segment

T = TypeVar("T")
MAX_BATCH_BYTES = 475_000  # Segment allows 500 KB; its SDKs stop at 475,000
MAX_BATCH_MESSAGES = 250  # Segment silently drops events beyond 2,500 per batch
LIBRARY = {"name": "dodo-transform", "version": __version__}


def message_id(webhook_id: str, transform: str, version: str, index: int) -> str:
    """Stable across retries of one message, different for every other message (< 100 chars)."""
    digest = hashlib.sha256(f"{webhook_id}\n{transform}\n{version}\n{index}".encode()).hexdigest()
    return f"dodo-{digest[:40]}"


def enrich(payload: dict[str, Any], kind: str, default_id: str) -> dict[str, Any]:
    """The message as it goes into a batch; the handler's own fields win."""
    message = dict(payload)
    message["type"] = kind
    message.setdefault("messageId", default_id)
    context = message.get("context")
    if not isinstance(context, dict):
        context = {}
    if "library" not in context:
        message["context"] = context | {"library": LIBRARY}
    return message


def batch_call(url: str) -> str | None:
    """The call type when requests to `url` go into a Segment batch (a JSON object payload
    given), else None."""
    kind = segment.call_type(url) if segment.is_segment_url(url) else None
    return kind if kind in segment.CALL_TYPES else None


def pack(
    items: Sequence[tuple[T, bytes]], max_messages: int = MAX_BATCH_MESSAGES
) -> Iterator[list[tuple[T, bytes]]]:
    """Split (item, serialised message) pairs into batches within Segment's limits."""
    batch: list[tuple[T, bytes]] = []
    size = 0
    for item, encoded in items:
        if batch and (len(batch) >= max_messages or size + len(encoded) + 1 > MAX_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append((item, encoded))
        size += len(encoded) + 1
    if batch:
        yield batch


def batch_body(encoded_messages: Sequence[bytes], sent_at: str) -> bytes:
    """The `/v1/batch` request body, from already serialised messages."""
    sent = json.dumps(sent_at).encode()
    return b'{"batch":[' + b",".join(encoded_messages) + b'],"sentAt":' + sent + b"}"


def as_sent(
    url: str, payload: Any, segment_base_url: str, default_id: str
) -> tuple[str, dict[str, Any]] | None:
    """Where a stored Segment call goes on the wire and its message there: in a `/v1/batch`
    call to the configured Segment endpoint, with its `type`, `messageId` and
    `context.library` (the batch's `sentAt` is set at each attempt). None for a request that
    is sent as it is."""
    kind = batch_call(url)
    if kind is None or not isinstance(payload, dict):
        return None
    return f"{segment_base_url.rstrip('/')}/v1/batch", enrich(payload, kind, default_id)
