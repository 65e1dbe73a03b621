"""`POST /webhooks/dodo`: what must happen before Dodo gets its answer, and nothing more.

Read the body (with a limit), verify the signature, check the body is an
event, and commit it to the store. Transforms and deliveries happen later, in
the pipeline. Answers: 200 stored (or already stored), 400 unusable body, 401
bad signature, 408 body not received in time (sent by `web.server`), 413 too large,
503 the store failed (Dodo retries).
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from dodo_transform.errors import PayloadError, SignatureError, StorageError
from dodo_transform.settings import WEBHOOK_PATH
from dodo_transform.store import NewEvent
from dodo_transform.transforms.event import Event
from dodo_transform.web.context import WebContext

log = logging.getLogger("dodo_transform.ingest")


class BodyTooLarge(Exception):
    pass


class BodyIncomplete(Exception):
    """The body stopped short: the client went away, or the server's body deadline (see
    `web.server`) cut it off and has already answered 408."""


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than `limit` bytes without reading them all."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge
            chunks.append(chunk)
    except ClientDisconnect:
        raise BodyIncomplete from None
    return b"".join(chunks)


routes = APIRouter()


def refuse(context: WebContext, status: int, reason: str, error: str) -> JSONResponse:
    context.metrics.rejected.labels(reason).inc()
    log.info("webhook refused", extra={"status": status, "reason": reason, "error": error})
    return JSONResponse({"error": error, "reason": reason}, status_code=status)


@routes.post(WEBHOOK_PATH, include_in_schema=False)
async def receive_webhook(request: Request) -> JSONResponse:
    # The context is read directly, not through Depends: this is the hot path.
    context: WebContext = request.app.state.context
    try:
        body = await read_body(request, context.max_body_bytes)
    except BodyTooLarge:
        return refuse(
            context, 413, "too_large", f"body is larger than {context.max_body_bytes} bytes"
        )
    except BodyIncomplete:
        # Seldom heard: the connection is gone, or already answered 408.
        return refuse(context, 408, "incomplete", "the body stopped before its end")
    try:
        webhook_id = context.verifier.verify(body, request.headers)
    except SignatureError as error:
        return refuse(context, 401, "signature", f"signature not verified: {error}")
    try:
        event = Event.from_body(body, webhook_id)
    except PayloadError as error:
        return refuse(context, 400, "payload", f"not a Dodo webhook event: {error}")
    try:
        event_id, created = await context.intake.add(NewEvent(webhook_id, event.event_type, body))
    except StorageError as error:
        log.error("event not stored", extra={"webhook_id": webhook_id, "error": str(error)})
        context.metrics.rejected.labels("storage").inc()
        return JSONResponse(
            {"error": "the event could not be stored; retry later", "reason": "storage"},
            status_code=503,
            headers={"Retry-After": "5"},
        )
    (context.metrics.received if created else context.metrics.duplicates).inc()
    log.info(
        "webhook stored" if created else "webhook already stored",
        extra={"webhook_id": webhook_id, "event_type": event.event_type, "event_id": event_id},
    )
    context.notify()
    return JSONResponse({"id": event_id, "duplicate": not created})
