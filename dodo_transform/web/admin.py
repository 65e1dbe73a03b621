"""The admin API under `/api`: events, deliveries with their attempts, replays, transforms.

Answers are typed models, so `/openapi.json` describes them truthfully.
Requests carrying credentials show them `[redacted]`: the store keeps requests
exactly as sent, and redaction happens here, at the edge. Lists are newest
first and paged by cursor: a full page carries a `Link: <...>; rel="next"`
header whose `before` continues it. Replays are only asked for here; the
worker runs them (see pipeline/replay.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from dodo_transform.errors import StorageError
from dodo_transform.pipeline.replay import ReplayError, check_replayable
from dodo_transform.store import (
    REPLAYABLE_STATUSES,
    Attempt,
    Delivery,
    DeliveryStatus,
    StoredEvent,
)
from dodo_transform.web.access import admin_guard
from dodo_transform.web.context import Context

T = TypeVar("T")
MAX_ID = 2**63 - 1  # ids are SQL integers: anything larger names nothing
# How long a single replay waits for the worker before answering 202 (queued).
REPLAY_WAIT_SECONDS = 10.0
REPLAY_POLL_SECONDS = 0.05
BULK_REPLAY_LIMIT = 10_000


# --- answers ----------------------------------------------------------------------------------


class RequestOut(BaseModel):
    method: str
    url: str
    headers: dict[str, str]
    payload: Any


class AttemptOut(BaseModel):
    at: float
    status_code: int | None
    error: str | None
    duration_ms: float


class DeliveryOut(BaseModel):
    id: int
    event_id: int
    webhook_id: str
    event_type: str
    transform: str
    version: str
    generation: int
    index: int
    status: DeliveryStatus
    request: RequestOut | None
    logs: list[Any]
    error: str | None
    attempts: int
    next_attempt_at: float
    created_at: float
    updated_at: float
    received_at: float


class DeliveryDetailOut(DeliveryOut):
    attempt_log: list[AttemptOut]


class EventOut(BaseModel):
    id: int
    webhook_id: str
    event_type: str
    received_at: float
    deliveries: list[DeliveryOut]


class EventDetailOut(BaseModel):
    id: int
    webhook_id: str
    event_type: str
    received_at: float
    body: str
    deliveries: list[DeliveryDetailOut]


class ReplayOut(BaseModel):
    replayed: int
    statuses: list[DeliveryStatus]
    queued: bool = False


class BulkReplayOut(BaseModel):
    replayed: list[int]
    errors: list[str]


class TransformOut(BaseModel):
    name: str
    version: str | None
    file: str | None
    enabled: bool
    load_error: str | None


def delivery_out(delivery: Delivery) -> DeliveryOut:
    """A stored delivery as the API shows it: its request with credentials redacted."""
    request = None if delivery.request is None else delivery.request.redacted()
    return DeliveryOut.model_validate(vars(delivery) | {"request": request})


def delivery_detail(delivery: Delivery, attempts: list[Attempt]) -> DeliveryDetailOut:
    return DeliveryDetailOut(
        **delivery_out(delivery).model_dump(),
        attempt_log=[AttemptOut(**vars(attempt)) for attempt in attempts],
    )


# --- errors, registered once ------------------------------------------------------------------


class NotFound(Exception):
    pass


def add_error_handlers(app: FastAPI) -> None:
    """Store failures answer 503 (retry later), refused replays 409, unknown ids 404."""

    async def unavailable(_: Request, error: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=503, headers={"Retry-After": "5"})

    async def conflict(_: Request, error: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=409)

    async def not_found(_: Request, error: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=404)

    app.add_exception_handler(StorageError, unavailable)
    app.add_exception_handler(ReplayError, conflict)
    app.add_exception_handler(NotFound, not_found)


# --- routes -----------------------------------------------------------------------------------


routes = APIRouter(prefix="/api", dependencies=[Depends(admin_guard)])


async def stored(method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A blocking store call, off the event loop (a `StorageError` answers 503)."""
    return await asyncio.to_thread(method, *args, **kwargs)


def next_page(request: Request, response: Response, ids: list[int], limit: int) -> None:
    """A full page links to the next one."""
    if len(ids) == limit:
        url = request.url.include_query_params(before=min(ids))
        response.headers["Link"] = f'<{url}>; rel="next"'


@routes.get("/events")
async def list_events(
    context: Context,
    request: Request,
    response: Response,
    limit: int = Query(50, ge=1, le=1000),
    before: int | None = Query(None, ge=1, le=MAX_ID),
) -> list[EventOut]:
    store = context.store
    events: list[StoredEvent] = await stored(store.list_events, limit, before=before)
    deliveries: list[Delivery] = await stored(
        store.list_deliveries, None, 1_000_000, event_ids=[e.id for e in events]
    )
    by_event: dict[int, list[DeliveryOut]] = {}
    for delivery in deliveries:
        by_event.setdefault(delivery.event_id, []).append(delivery_out(delivery))
    next_page(request, response, [e.id for e in events], limit)
    return [
        EventOut(
            id=event.id,
            webhook_id=event.webhook_id,
            event_type=event.event_type,
            received_at=event.received_at,
            deliveries=by_event.get(event.id, []),
        )
        for event in events
    ]


@routes.get("/events/{event_id}")
async def get_event(event_id: int, context: Context) -> EventDetailOut:
    store = context.store
    event = await stored(store.get_event, event_id) if event_id <= MAX_ID else None
    if event is None:
        raise NotFound(f"no event {event_id}")
    deliveries = await stored(store.list_deliveries, None, 1000, event_id)
    return EventDetailOut(
        id=event.id,
        webhook_id=event.webhook_id,
        event_type=event.event_type,
        received_at=event.received_at,
        body=event.body.decode("utf-8", errors="replace"),
        deliveries=[delivery_detail(d, await stored(store.attempts, d.id)) for d in deliveries],
    )


@routes.get("/deliveries")
async def list_deliveries(
    context: Context,
    request: Request,
    response: Response,
    status: DeliveryStatus | None = None,
    limit: int = Query(100, ge=1, le=1000),
    before: int | None = Query(None, ge=1, le=MAX_ID),
) -> list[DeliveryOut]:
    store = context.store
    deliveries = await stored(store.list_deliveries, status, limit, before=before)
    next_page(request, response, [d.id for d in deliveries], limit)
    return [delivery_out(d) for d in deliveries]


@routes.get("/deliveries/{delivery_id}")
async def get_delivery(delivery_id: int, context: Context) -> DeliveryDetailOut:
    store = context.store
    delivery = await stored(store.get_delivery, delivery_id) if delivery_id <= MAX_ID else None
    if delivery is None:
        raise NotFound(f"no delivery {delivery_id}")
    return delivery_detail(delivery, await stored(store.attempts, delivery_id))


@routes.post("/deliveries/{delivery_id}/replay", responses={202: {"model": ReplayOut}})
async def replay(delivery_id: int, response: Response, context: Context) -> ReplayOut:
    """Ask the worker to replay; answer with the new statuses once it has (or 202)."""
    store = context.store
    if delivery_id > MAX_ID:
        raise ReplayError(f"no delivery {delivery_id}")
    await stored(check_replayable, store, delivery_id)
    await stored(store.request_replays, [delivery_id])
    context.notify()
    deadline = time.monotonic() + REPLAY_WAIT_SECONDS
    while time.monotonic() < deadline:
        done = await stored(store.get_replay, delivery_id)
        if done is not None and done.done_at is not None:
            if done.error is not None:
                raise ReplayError(done.error)
            return ReplayOut(replayed=delivery_id, statuses=list(done.statuses))
        await asyncio.sleep(REPLAY_POLL_SECONDS)
    response.status_code = 202
    return ReplayOut(replayed=delivery_id, statuses=[], queued=True)


@routes.post("/replay")
async def replay_all(context: Context, status: str = Query("failed")) -> BulkReplayOut:
    """Ask the worker to replay every failed (or dead) delivery, once per event and
    transform; the answer lists what was asked for."""
    store = context.store
    if status not in REPLAYABLE_STATUSES:
        raise HTTPException(400, f"status must be one of {', '.join(REPLAYABLE_STATUSES)}")
    chosen: dict[tuple[int, str], int] = {}
    for delivery in await stored(store.list_deliveries, DeliveryStatus(status), BULK_REPLAY_LIMIT):
        chosen.setdefault((delivery.event_id, delivery.transform), delivery.id)
    ids = sorted(chosen.values())
    if ids:
        await stored(store.request_replays, ids)
        context.notify()
    return BulkReplayOut(replayed=ids, errors=[])


@routes.get("/transforms")
async def transforms(context: Context) -> list[TransformOut]:
    registry = context.registry
    current, errors = registry.current(), registry.errors
    return [
        TransformOut(
            name=name,
            version=current[name].version if name in current else None,
            file=current[name].filename if name in current else None,
            enabled=registry.settings(name).enabled,
            load_error=errors.get(name),
        )
        for name in sorted(current.keys() | errors.keys())
    ]
