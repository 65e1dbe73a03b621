"""`POST /webhooks/dodo`: what must happen before Dodo gets its answer, and nothing more.

Read the body (with a limit), verify the signature, check the body is an
event, and commit it to the store. Transforms and deliveries happen later, in
the pipeline. Answers: 200 stored (or already stored), 400 unusable body, 401
bad signature, 408 body not received in time (sent by `web.server`), 413 too large,
503 the store failed (Dodo retries).

This is the hot path, so it is a plain ASGI app (`Ingest`) that `web.app` calls
before FastAPI's middleware and routing: it reads the three signature headers
from the raw header list, checks the body with orjson, and writes its log line
through `logs.info`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable

import orjson
from starlette.types import Receive, Scope, Send

from dodo_transform import logs
from dodo_transform.errors import PayloadError, SignatureError, StorageError
from dodo_transform.store import NewEvent
from dodo_transform.transforms.event import Event
from dodo_transform.web.context import WebContext

log = logging.getLogger("dodo_transform.ingest")
# Refusals have a logger of their own, rate-limited (`logs.setup`): any client can cause them.
refused = logging.getLogger("dodo_transform.ingest.refused")
# Names the setting, never its value, the header or the body.
SIGNATURE_REFUSED = (
    "webhook refused: signature not verified; if Dodo sent it, check DODO_WEBHOOK_SECRET against"
    " the signing secret in Dodo's dashboard (Developer > Webhooks > the endpoint)"
)

# The headers ingest reads, as the server hands them over (lower case) and as `Verifier` and
# the body limit name them.
_WANTED = {
    name.encode(): name
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature", "content-length")
}
_JSON = [(b"content-type", b"application/json")]


class BodyTooLarge(Exception):
    pass


class BodyIncomplete(Exception):
    """The body stopped short: the client went away, or the server's body deadline (see
    `web.server`) cut it off and has already answered 408."""


class Answer(Exception):
    """A refusal: the status, the JSON it carries, and its extra headers."""

    def __init__(self, status: int, payload: dict[str, str], headers: dict[str, str]) -> None:
        super().__init__(status)
        self.status = status
        self.payload = payload
        self.headers = headers


def request_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The headers ingest reads, from the server's list of (lower-case name, value) pairs;
    the first of a repeated header counts, as with Starlette's `Headers.get`."""
    found: dict[str, str] = {}
    for name, value in raw:
        wanted = _WANTED.get(name)
        if wanted is not None and wanted not in found:
            found[wanted] = value.decode("latin-1")
    return found


async def read_body(receive: Receive, declared: str, limit: int) -> bytes:
    """The request body, refusing more than `limit` bytes without reading them all."""
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BodyIncomplete
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        more = message.get("more_body", False)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def event_type(body: bytes) -> str:
    """The `type` of a webhook body; `PayloadError` when it is not a JSON object with a
    string `type`.

    orjson decides for the bodies it takes; a body it refuses gets the standard library's
    verdict (`Event.from_body`), which accepts a little more (NaN, numbers beyond a double,
    lone surrogates), so the 400 rule is the same as it always was.
    """
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return Event.from_body(body).event_type
    if not isinstance(parsed, dict):
        raise PayloadError("body is not a JSON object")
    kind = parsed.get("type")
    if not isinstance(kind, str):
        raise PayloadError("body has no string field `type`")
    return kind


def _dumps(payload: dict[str, str]) -> str:
    # As Starlette's JSONResponse writes it.
    return json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


class Ingest:
    """The ASGI app for `POST /webhooks/dodo`."""

    def __init__(self, context: WebContext) -> None:
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            status, payload = 200, await self.store(scope, receive)
            headers: dict[str, str] = {}
        except Answer as answer:
            status, payload, headers = answer.status, _dumps(answer.payload), answer.headers
        body = payload.encode()
        fields = [(b"content-length", str(len(body)).encode()), *_JSON]
        fields += [(name.lower().encode(), value.encode()) for name, value in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": fields})
        await send({"type": "http.response.body", "body": body})

    async def store(self, scope: Scope, receive: Receive) -> str:
        """Receive, verify, check and commit one webhook; its JSON answer, or `Answer`."""
        context = self.context
        started_ns = time.time_ns()
        headers = request_headers(scope["headers"])
        body = await self.receive_body(receive, headers.get("content-length", ""))
        try:
            webhook_id, mode = context.verifier.verified(body, headers)
        except SignatureError as error:
            raise self.refuse(401, "signature", f"signature not verified: {error}") from None
        try:
            kind = event_type(body)
        except PayloadError as error:
            raise self.refuse(400, "payload", f"not a Dodo webhook event: {error}") from None
        event_id, created = await self.commit(NewEvent(webhook_id, kind, body, mode))
        (context.metrics.received if created else context.metrics.duplicates).inc()
        if created:  # a duplicate's trace is the first one's
            context.tracing.ingested(webhook_id, kind, started_ns)
        logs.info(
            log,
            "webhook stored" if created else "webhook already stored",
            webhook_id=webhook_id,
            event_type=kind,
            event_id=event_id,
        )
        context.notify_events()
        return f'{{"id":{event_id},"duplicate":{"false" if created else "true"}}}'

    async def receive_body(self, receive: Receive, declared: str) -> bytes:
        limit = self.context.max_body_bytes
        try:
            return await read_body(receive, declared, limit)
        except BodyTooLarge:
            raise self.refuse(413, "too_large", f"body is larger than {limit} bytes") from None
        except BodyIncomplete:
            # Seldom heard: the connection is gone, or already answered 408.
            raise self.refuse(408, "incomplete", "the body stopped before its end") from None

    async def commit(self, event: NewEvent) -> tuple[int, bool]:
        try:
            return await self.context.intake.add(event)
        except StorageError as error:
            log.error(
                "event not stored", extra={"webhook_id": event.webhook_id, "error": str(error)}
            )
            self.context.metrics.rejected.labels("storage").inc()
            answer = {"error": "the event could not be stored; retry later", "reason": "storage"}
            raise Answer(503, answer, {"Retry-After": "5"}) from None

    def refuse(self, status: int, reason: str, error: str) -> Answer:
        """Count and log a refusal; the answer to send. A bad signature is a warning with a
        hint: most often the secret is wrong, and then every webhook is refused."""
        self.context.metrics.rejected.labels(reason).inc()
        fields = {"status": status, "reason": reason, "error": error}
        if reason == "signature":
            refused.warning(SIGNATURE_REFUSED, extra=fields)
        else:
            refused.info("webhook refused", extra=fields)
        return Answer(status, {"error": error, "reason": reason}, {})
