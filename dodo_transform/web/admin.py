"""The admin API under `/api`: events, deliveries with their attempts, replays, transforms.

Answers are typed models, so `/openapi.json` describes them truthfully.
Requests carrying credentials show them `[redacted]`: the store keeps requests
exactly as sent, and redaction happens here, at the edge. Lists are newest
first and paged by cursor: a full page carries a `Link: <...>; rel="next"`
header whose `before` continues it. Replays are only asked for here; the
worker runs them (see pipeline/replay.py).

Answers are rendered by `outgoing.encode_json`, off the event loop, not by
pydantic's JSON serialiser: that one gives up on objects nested past 255
levels and on lone surrogates, and a stored payload may hold either. Every
stored delivery is shown, its text in well-formed UTF-8.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from dodo_transform import instances
from dodo_transform.errors import StorageError
from dodo_transform.outgoing import encode_json
from dodo_transform.pipeline import backfill, bulk_replay
from dodo_transform.pipeline.replay import ReplayError, UnknownDelivery, check_replayable
from dodo_transform.store import (
    REPLAYABLE_STATUSES,
    Attempt,
    Backfill,
    BulkReplay,
    Delivery,
    DeliveryStatus,
    Filters,
    Heartbeat,
    ReplayMode,
    SearchError,
    StoredEvent,
    erasure,
)
from dodo_transform.store.search import query_terms
from dodo_transform.transforms.settings import TransformSettings
from dodo_transform.web import audit
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
    # Where its request goes: an origin, scheme://host[:port] (a path may hold a token).
    destination: str = ""
    # The headers its last attempt sent, credentials' values redacted (None: none was made).
    sent_headers: dict[str, str] | None = None


class DeliveryDetailOut(DeliveryOut):
    attempt_log: list[AttemptOut]


class EventOut(BaseModel):
    id: int
    webhook_id: str
    event_type: str
    received_at: float
    # live or test: which of Dodo's endpoints sent it (null: stored before modes were kept)
    mode: str | None = None
    deliveries: list[DeliveryOut]


class EventDetailOut(BaseModel):
    id: int
    webhook_id: str
    event_type: str
    received_at: float
    mode: str | None = None  # live or test, as in EventOut
    body: str
    deliveries: list[DeliveryDetailOut]


class ReplayOut(BaseModel):
    replayed: int
    statuses: list[DeliveryStatus]
    queued: bool = False


class BulkReplayOut(BaseModel):
    replayed: list[int]
    errors: list[str]


class BackfillOut(BaseModel):
    id: int | None  # None: a dry run, nothing started
    transform: str
    event_types: list[str] | None
    since: float | None
    # Events still to run (by type, and in all): for a dry run, what starting it would run.
    remaining: dict[str, int]
    remaining_total: int
    ran: int = 0
    created_at: float | None = None
    done_at: float | None = None
    error: str | None = None


class PausedOut(BaseModel):
    """A destination paused by its circuit breaker: it kept failing (see docs/reliability.md)."""

    transform: str
    destination: str  # an origin, scheme://host[:port]: never a path, which may hold a token
    since: float
    last_error: str | None
    waiting: int
    next_probe_at: float


class InstanceOut(BaseModel):
    instance: str  # host and data dir
    host: str
    role: str
    release: str  # the dodo-transform version
    started_at: float
    last_heartbeat: float
    transforms: dict[str, str]  # name -> version


class DifferenceOut(BaseModel):
    transform: str
    versions: dict[str, list[str]]  # version ("none": not loaded) -> instances
    message: str


class StatusOut(BaseModel):
    ready: bool
    problems: list[str]
    # What is wrong with transforms.toml: its bad tables are not taken in (see /transforms).
    settings_error: str | None = None
    dry_run: bool
    pending_events: int
    deliveries: dict[DeliveryStatus, int]
    # Destinations whose deliveries wait while they keep failing; they resume by themselves.
    paused_destinations: list[PausedOut] = []
    # The instances seen lately (their heartbeats), and each transform they do not all run at
    # one version (see dodo_transform/instances.py).
    instances: list[InstanceOut] = []
    version_differences: list[DifferenceOut] = []


class TransformOut(BaseModel):
    name: str
    version: str | None
    file: str | None
    enabled: bool
    load_error: str | None
    # This version hit its resource limit on several events in a row and is not run until
    # the file changes; its events are stored as `failed`.
    quarantined: bool
    # Likely mistakes in its settings that do not stop it loading (an `events` typo).
    warnings: list[str] = []
    # From transforms.toml: the event types it receives (None: all), the host of its default
    # url (a webhook URL may hold a token: only the host is shown), its header names (values
    # are credentials), and whether it has a write key of its own.
    events: list[str] | None = None
    url_host: str | None = None
    header_names: list[str] = []
    own_write_key: bool = False


def _configured(settings: TransformSettings) -> dict[str, Any]:
    return {
        "events": settings.events,
        "url_host": urlsplit(settings.target_url).hostname if settings.target_url else None,
        "header_names": sorted(settings.headers),
        "own_write_key": bool(settings.write_key),
    }


def delivery_out(delivery: Delivery) -> DeliveryOut:
    """A stored delivery as the API shows it: its request with credentials redacted."""
    request = None if delivery.request is None else delivery.request.redacted()
    return DeliveryOut.model_validate(vars(delivery) | {"request": request})


def delivery_detail(delivery: Delivery, attempts: list[Attempt]) -> DeliveryDetailOut:
    return DeliveryDetailOut(
        **delivery_out(delivery).model_dump(),
        attempt_log=[AttemptOut(**vars(attempt)) for attempt in attempts],
    )


class WellFormedJSON(JSONResponse):
    """A JSON answer in well-formed UTF-8 (see `outgoing.encode_json`)."""

    def render(self, content: Any) -> bytes:
        return encode_json(content)


Answer = BaseModel | list[Any]


async def answer(
    content: Answer | Callable[[], Answer],
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """The answer, or what `content()` makes, rendered in a thread (see the module docstring)."""

    def render() -> bytes:
        return encode_json(_plain(content() if callable(content) else content))

    body = await asyncio.to_thread(render)
    return Response(body, status_code, headers, media_type="application/json")


def _plain(value: Any) -> Any:
    # Python mode: pydantic's JSON mode has the depth limit this module avoids.
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


# --- errors, registered once ------------------------------------------------------------------


class NotFound(Exception):
    pass


def add_error_handlers(app: FastAPI) -> None:
    """Store failures answer 503 (retry later), refused replays and backfills 409, unknown
    ids and transforms 404."""

    async def unavailable(_: Request, error: Exception) -> JSONResponse:
        return WellFormedJSON({"detail": str(error)}, status_code=503, headers={"Retry-After": "5"})

    async def conflict(_: Request, error: Exception) -> JSONResponse:
        return WellFormedJSON({"detail": str(error)}, status_code=409)

    async def not_found(_: Request, error: Exception) -> JSONResponse:
        return WellFormedJSON({"detail": str(error)}, status_code=404)

    app.add_exception_handler(StorageError, unavailable)
    app.add_exception_handler(ReplayError, conflict)

    async def unprocessable(_: Request, error: Exception) -> JSONResponse:
        return WellFormedJSON({"detail": str(error)}, status_code=422)

    app.add_exception_handler(NotFound, not_found)
    app.add_exception_handler(SearchError, unprocessable)
    app.add_exception_handler(erasure.ErasureError, unprocessable)
    app.add_exception_handler(bulk_replay.BulkReplayError, unprocessable)
    app.add_exception_handler(UnknownDelivery, not_found)
    app.add_exception_handler(backfill.BackfillError, conflict)
    app.add_exception_handler(backfill.UnknownTransform, not_found)


# --- routes -----------------------------------------------------------------------------------


routes = APIRouter(prefix="/api", dependencies=[Depends(admin_guard)])


async def stored(method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A blocking store call, off the event loop (a `StorageError` answers 503)."""
    return await asyncio.to_thread(method, *args, **kwargs)


def next_page(request: Request, ids: list[int], limit: int) -> dict[str, str]:
    """The headers of a page: a full one links to the next."""
    if len(ids) < limit:
        return {}
    url = request.url.include_query_params(before=min(ids))
    return {"Link": f'<{url}>; rel="next"'}


def chosen(
    q: Annotated[
        str | None,
        Query(
            max_length=1000,
            description="Words the event body names: a customer id, an email, a payment or"
            " subscription id, a name (whole words, any case).",
        ),
    ] = None,
    transform: str | None = None,
    event_type: str | None = None,
    status: DeliveryStatus | None = None,
    destination: Annotated[
        str | None, Query(description="A host, e.g. api.segment.io, or an origin.")
    ] = None,
    since: Annotated[str | None, Query(description="Received since, e.g. 2026-10-01.")] = None,
    until: Annotated[str | None, Query(description="Received before, e.g. 2026-10-02.")] = None,
) -> Filters:
    """The filters of a list, a count or a bulk replay, from the query string."""
    filters = Filters(
        q=q or None,
        transform=transform or None,
        event_type=event_type or None,
        status=status,
        destination=destination or None,
        since=parse_since(since),
        until=parse_since(until, "until"),
    )
    if filters.q is not None:
        query_terms(filters.q)  # a search that cannot run is refused before any is made
    return filters


Chosen = Annotated[Filters, Depends(chosen)]


@routes.get("/events", response_model=list[EventOut])
async def list_events(
    context: Context,
    request: Request,
    filters: Chosen,
    limit: int = Query(50, ge=1, le=1000),
    before: int | None = Query(None, ge=1, le=MAX_ID),
) -> Response:
    store = context.store
    events: list[StoredEvent] = await stored(
        store.list_events, limit, before=before, filters=filters
    )
    deliveries: list[Delivery] = await stored(
        store.list_deliveries, None, 1_000_000, event_ids=[e.id for e in events]
    )

    def build() -> list[EventOut]:
        by_event: dict[int, list[DeliveryOut]] = {}
        for delivery in deliveries:
            by_event.setdefault(delivery.event_id, []).append(delivery_out(delivery))
        return [
            EventOut(
                id=event.id,
                webhook_id=event.webhook_id,
                event_type=event.event_type,
                received_at=event.received_at,
                mode=event.mode,
                deliveries=by_event.get(event.id, []),
            )
            for event in events
        ]

    return await answer(build, headers=next_page(request, [e.id for e in events], limit))


@routes.get("/events/{event_id}", response_model=EventDetailOut)
async def get_event(event_id: int, context: Context) -> Response:
    store = context.store
    event = await stored(store.get_event, event_id) if event_id <= MAX_ID else None
    if event is None:
        raise NotFound(f"no event {event_id}")
    deliveries = await stored(store.list_deliveries, None, 1000, event_id)
    attempts = [await stored(store.attempts, d.id) for d in deliveries]
    return await answer(
        lambda: EventDetailOut(
            id=event.id,
            webhook_id=event.webhook_id,
            event_type=event.event_type,
            received_at=event.received_at,
            mode=event.mode,
            body=event.body.decode("utf-8", errors="replace"),
            deliveries=[delivery_detail(d, a) for d, a in zip(deliveries, attempts, strict=True)],
        )
    )


@routes.get("/deliveries", response_model=list[DeliveryOut])
async def list_deliveries(
    context: Context,
    request: Request,
    filters: Chosen,
    limit: int = Query(100, ge=1, le=1000),
    before: int | None = Query(None, ge=1, le=MAX_ID),
) -> Response:
    store = context.store
    deliveries = await stored(store.list_deliveries, None, limit, before=before, filters=filters)
    return await answer(
        lambda: [delivery_out(d) for d in deliveries],
        headers=next_page(request, [d.id for d in deliveries], limit),
    )


@routes.get("/deliveries/{delivery_id}", response_model=DeliveryDetailOut)
async def get_delivery(delivery_id: int, context: Context) -> Response:
    store = context.store
    delivery = await stored(store.get_delivery, delivery_id) if delivery_id <= MAX_ID else None
    if delivery is None:
        raise NotFound(f"no delivery {delivery_id}")
    attempts = await stored(store.attempts, delivery_id)
    return await answer(lambda: delivery_detail(delivery, attempts))


@routes.post(
    "/deliveries/{delivery_id}/replay",
    response_model=ReplayOut,
    responses={202: {"model": ReplayOut}, 404: {}, 409: {}},
)
async def replay(delivery_id: int, context: Context, request: Request) -> Response:
    """Ask the worker to replay; answer with the new statuses once it has (or 202)."""
    store = context.store
    if delivery_id > MAX_ID:
        raise UnknownDelivery(f"no delivery {delivery_id}")
    await stored(check_replayable, store, delivery_id)
    await stored(store.request_replays, [delivery_id])
    await audit.record(request, context, "replay", f"delivery {delivery_id}")
    context.notify()
    deadline = time.monotonic() + REPLAY_WAIT_SECONDS
    while time.monotonic() < deadline:
        done = await stored(store.get_replay, delivery_id)
        if done is not None and done.done_at is not None:
            if done.error is not None:
                raise ReplayError(done.error)
            return await answer(ReplayOut(replayed=delivery_id, statuses=list(done.statuses)))
        await asyncio.sleep(REPLAY_POLL_SECONDS)
    return await answer(ReplayOut(replayed=delivery_id, statuses=[], queued=True), status_code=202)


@routes.post("/replay")
async def replay_all(
    context: Context,
    request: Request,
    status: str = Query("failed"),
    transform: str | None = None,
    since: str | None = None,
) -> BulkReplayOut:
    """Ask the worker to replay every delivery in `status` (of `transform`, of events
    received since `since`), once per event and transform; the answer lists what was asked
    for."""
    store = context.store
    if status not in REPLAYABLE_STATUSES:
        raise HTTPException(400, f"status must be one of {', '.join(REPLAYABLE_STATUSES)}")
    chosen: dict[tuple[int, str], int] = {}
    found = await stored(
        store.list_deliveries,
        DeliveryStatus(status),
        BULK_REPLAY_LIMIT,
        transform=transform,
        since=parse_since(since),
    )
    for delivery in found:
        chosen.setdefault((delivery.event_id, delivery.transform), delivery.id)
    ids = sorted(chosen.values())
    if ids:
        await stored(store.request_replays, ids)
        context.notify()
        detail = f"status={status}" + (f" transform={transform}" if transform else "")
        await audit.record(request, context, "replay", f"{len(ids)} deliveries", detail)
    return BulkReplayOut(replayed=ids, errors=[])


class BulkReplayStateOut(BaseModel):
    """A bulk replay: what it covers, how far it got (see pipeline/bulk_replay.py)."""

    id: int
    filters: dict[str, Any]
    mode: ReplayMode
    state: str  # running, done, cancelled or stopped (see `error`)
    total: int  # deliveries it covers
    done: int  # taken so far
    replayed: int  # of those, replayed (the others had been, with a sibling, or could not be)
    created_at: float
    done_at: float | None
    cancelled_at: float | None
    error: str | None


class BulkReplayPreviewOut(BaseModel):
    """What a bulk replay of these filters would take now: nothing is started."""

    count: int
    sample: list[DeliveryOut]
    filters: dict[str, Any]
    mode: ReplayMode


def bulk_replay_out(bulk: BulkReplay) -> BulkReplayStateOut:
    return BulkReplayStateOut(
        **{
            key: value
            for key, value in vars(bulk).items()
            if key in BulkReplayStateOut.model_fields
        },
        state=bulk.state,
    )


@routes.post(
    "/replays",
    status_code=201,
    response_model=BulkReplayStateOut,
    responses={200: {"model": BulkReplayPreviewOut}, 422: {}},
)
async def start_bulk_replay(
    context: Context,
    request: Request,
    filters: Chosen,
    mode: ReplayMode = ReplayMode.TRANSFORM,
    dry_run: bool = False,
) -> Response:
    """Replay every replayable delivery the filters choose (those of any replayable status
    when none is given), in the worker at a bounded pace; `dry_run` only counts them and
    shows a few. `mode=original` sends the stored requests again, exactly as first made."""
    if dry_run:
        total, sample = await stored(bulk_replay.preview, context.store, filters)
        return await answer(
            BulkReplayPreviewOut(
                count=total,
                sample=[delivery_out(d) for d in sample],
                filters=filters.to_json(),
                mode=mode,
            )
        )
    bulk_replay.check_filters(filters)
    bulk_id = await stored(context.store.start_bulk_replay, filters, mode)
    context.notify()
    started = await stored(context.store.get_bulk_replay, bulk_id)
    assert started is not None
    await audit.record(
        request, context, "bulk replay", f"bulk replay {bulk_id}", bulk_detail(started)
    )
    return await answer(bulk_replay_out(started), status_code=201)


@routes.get("/replays", response_model=list[BulkReplayStateOut])
async def list_bulk_replays(context: Context, limit: int = Query(20, ge=1, le=1000)) -> Response:
    """Bulk replays, newest first, with their progress."""
    found = await stored(context.store.list_bulk_replays, limit)
    return await answer([bulk_replay_out(bulk) for bulk in found])


@routes.get("/replays/{bulk_id}", response_model=BulkReplayStateOut)
async def get_bulk_replay(bulk_id: int, context: Context) -> Response:
    found = await stored(context.store.get_bulk_replay, bulk_id) if bulk_id <= MAX_ID else None
    if found is None:
        raise NotFound(f"no bulk replay {bulk_id}")
    return await answer(bulk_replay_out(found))


@routes.post("/replays/{bulk_id}/cancel", response_model=BulkReplayStateOut, responses={409: {}})
async def cancel_bulk_replay(bulk_id: int, context: Context, request: Request) -> Response:
    """Stop a running bulk replay: what it has not taken yet stays as it is."""
    found = await stored(context.store.get_bulk_replay, bulk_id) if bulk_id <= MAX_ID else None
    if found is None:
        raise NotFound(f"no bulk replay {bulk_id}")
    if not await stored(context.store.cancel_bulk_replay, bulk_id):
        raise HTTPException(409, f"bulk replay {bulk_id} has ended already ({found.state})")
    cancelled = await stored(context.store.get_bulk_replay, bulk_id)
    assert cancelled is not None
    taken = f"after {cancelled.done} of {cancelled.total}"
    await audit.record(request, context, "bulk replay cancelled", f"bulk replay {bulk_id}", taken)
    return await answer(bulk_replay_out(cancelled))


class ErasureOut(BaseModel):
    """An erasure: how many events name the customer (a dry run) or were deleted."""

    events: int
    deliveries: int
    erased: bool  # False: a dry run, nothing deleted
    # SQLite: the WAL was truncated at once (else at its next checkpoint). See docs/operations.md
    # for what PostgreSQL needs (VACUUM FULL).
    wal_cleared: bool = True


@routes.post("/erasures", response_model=ErasureOut, responses={422: {}})
async def erase_customer(
    context: Context,
    request: Request,
    customer: Annotated[str, Query(max_length=1000, description="A customer id or an email.")],
    dry_run: bool = False,
) -> Response:
    """Delete every stored event whose body names this customer, with its deliveries and
    attempts (see store/erasure.py); `dry_run` only counts them."""
    found = await stored(erasure.find, context.store, customer)
    if dry_run:
        deliveries = await stored(context.store.count_deliveries_of, found.event_ids)
        return await answer(
            ErasureOut(events=len(found.event_ids), deliveries=deliveries, erased=False)
        )
    erased = await stored(context.store.erase_events, found.event_ids, found.identifiers)
    # The customer's id or email is personal data: the trail says how much, not whose.
    counted = f"{erased.events} events, {erased.deliveries} deliveries"
    await audit.record(
        request, context, "erasure", "a customer", f"{counted}; who: {audit.WITHHELD}"
    )
    return await answer(
        ErasureOut(
            events=erased.events,
            deliveries=erased.deliveries,
            erased=True,
            wal_cleared=erased.wal_cleared,
        )
    )


def bulk_detail(bulk: BulkReplay) -> str:
    """A bulk replay as the audit trail keeps it: how many, how, which filters."""
    filters = audit.shown_filters(bulk.filters) or "no filters"
    return f"{bulk.total} deliveries, mode {bulk.mode.value}, {filters}"


def parse_since(since: str | None, name: str = "since") -> float | None:
    """A date or date-time in ISO 8601 (UTC unless it says otherwise) as a Unix time."""
    if not since:
        return None
    try:
        moment = datetime.fromisoformat(since)
    except ValueError:
        raise HTTPException(
            422, f"{name}: {since!r} is not a date; give e.g. 2026-10-01 or 2026-10-01T12:00:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def backfill_out(record: Backfill, remaining: dict[str, int]) -> BackfillOut:
    return BackfillOut(
        id=record.id,
        transform=record.transform,
        event_types=None if record.event_types is None else list(record.event_types),
        since=record.since,
        remaining=remaining,
        remaining_total=sum(remaining.values()),
        ran=record.ran,
        created_at=record.created_at,
        done_at=record.done_at,
        error=record.error,
    )


@routes.post("/backfills", status_code=201, responses={200: {"model": BackfillOut}, 409: {}})
async def start_backfill(
    context: Context,
    request: Request,
    transform: str,
    since: str | None = None,
    event_type: Annotated[list[str] | None, Query(alias="type")] = None,
    dry_run: bool = False,
) -> Response:
    """Run `transform` over the stored events it has no delivery for (of `type`, received
    since `since`), paced by the rate limit; `dry_run` only counts them."""
    from_time = parse_since(since)
    backfill.check_backfillable(context.registry, transform)
    remaining = await stored(
        backfill.count, context.store, context.registry, transform, event_type, from_time
    )
    if dry_run:
        return await answer(
            BackfillOut(
                id=None,
                transform=transform,
                event_types=event_type,
                since=from_time,
                remaining=remaining,
                remaining_total=sum(remaining.values()),
            )
        )
    backfill_id = await stored(context.store.start_backfill, transform, event_type, from_time)
    context.notify()
    scope = f"{sum(remaining.values())} events" + (
        f", types {','.join(event_type)}" if event_type else ""
    )
    await audit.record(
        request, context, "backfill", f"backfill {backfill_id} of {transform}", scope
    )
    record = await stored(context.store.get_backfill, backfill_id)
    assert record is not None
    return await answer(backfill_out(record, remaining), status_code=201)


@routes.get("/backfills", response_model=list[BackfillOut])
async def list_backfills(context: Context, limit: int = Query(20, ge=1, le=1000)) -> Response:
    """Backfills, newest first, with what each has left to run."""
    records = await stored(context.store.list_backfills, limit)
    shown = []
    for record in records:
        remaining: dict[str, int] = {}
        if record.done_at is None:
            remaining = await stored(
                backfill.count,
                context.store,
                context.registry,
                record.transform,
                record.event_types,
                record.since,
                record.cursor,
                record.last_event_id,
            )
        shown.append(backfill_out(record, remaining))
    return await answer(shown)


class AuditOut(BaseModel):
    """One entry of the audit trail (never event contents)."""

    id: int
    at: float
    action: str
    subject: str
    detail: str
    actor: str


@routes.get("/audit", response_model=list[AuditOut])
async def audit_trail(
    context: Context,
    request: Request,
    limit: int = Query(100, ge=1, le=1000),
    before: int | None = Query(None, ge=1, le=MAX_ID),
) -> Response:
    """Who saved, restored, replayed, backfilled, erased or logged in, and when; newest first."""
    entries = await stored(context.store.list_audit, limit, before=before)
    return await answer(
        [AuditOut(**vars(entry)) for entry in entries],
        headers=next_page(request, [entry.id for entry in entries], limit),
    )


@routes.get("/status")
async def status(context: Context) -> StatusOut:
    """The service at a glance: ready or why not, dry run or live, work by status."""
    problems = [] if context.loaded() else ["transforms not loaded yet"]
    problems += context.problems()
    counts = await stored(context.store.counts)
    beats = await stored(context.store.heartbeats, instances.LIVE_SECONDS)
    return StatusOut(
        ready=not problems,
        problems=problems,
        dry_run=context.dry_run,
        pending_events=await stored(context.store.pending_events),
        deliveries=counts,
        settings_error=context.registry.settings_error,
        paused_destinations=[PausedOut(**asdict(paused)) for paused in context.paused()],
        instances=[instance_out(beat) for beat in beats],
        version_differences=[
            DifferenceOut(transform=d.transform, versions=d.versions, message=str(d))
            for d in instances.differences(beats)
        ],
    )


def instance_out(beat: Heartbeat) -> InstanceOut:
    return InstanceOut(
        instance=beat.instance,
        host=beat.host,
        role=beat.role,
        release=beat.release,
        started_at=beat.started_at,
        last_heartbeat=beat.seen_at,
        transforms=dict(beat.transforms),
    )


@routes.get("/transforms")
async def transforms(context: Context) -> list[TransformOut]:
    registry = context.registry
    current, errors = registry.current(), registry.errors
    quarantined = set(context.quarantined())
    return [
        TransformOut(
            name=name,
            version=current[name].version if name in current else None,
            file=current[name].filename if name in current else None,
            enabled=registry.settings(name).enabled,
            load_error=errors.get(name),
            quarantined=name in current and (name, current[name].version) in quarantined,
            warnings=registry.warnings(name),
            **_configured(registry.settings(name)),
        )
        for name in sorted(current.keys() | errors.keys())
    ]
