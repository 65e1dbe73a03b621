"""The console's pages: the overview, transforms, deliveries and events. They only read."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from dodo_transform import instances
from dodo_transform.outbound import batching
from dodo_transform.pipeline import bulk_replay
from dodo_transform.store import Delivery, DeliveryStatus, SearchError
from dodo_transform.store.search import query_terms
from dodo_transform.web.admin import parse_since
from dodo_transform.web.console import files, history, reading, samples, saves, summaries
from dodo_transform.web.console.rendering import page, pretty
from dodo_transform.web.console.session import console_guard
from dodo_transform.web.context import Context

T = TypeVar("T")
MAX_ID = 2**63 - 1
AUDIT_PAGE = 100
SHOWN_REPLAYABLE = 10_000  # "Replay N deliveries" counts up to this, then says "more than"

routes = APIRouter(dependencies=[Depends(console_guard)], include_in_schema=False)


async def blocking(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A store or file read, off the event loop (a `StorageError` answers 503)."""
    return await asyncio.to_thread(function, *args, **kwargs)


@routes.get("/", response_class=HTMLResponse)
async def overview(request: Request, context: Context) -> HTMLResponse:
    found = await blocking(summaries.overview, context)
    beats = await blocking(context.store.heartbeats, instances.LIVE_SECONDS)
    return await page(
        request,
        "overview.html",
        overview=found,
        beats=beats,
        differences=instances.differences(beats),
    )


@routes.get("/transforms", response_class=HTMLResponse)
async def transforms(request: Request, context: Context) -> HTMLResponse:
    def rows() -> list[summaries.TransformRow]:
        recent = reading.recent_deliveries(context.store, time.time() - summaries.DAY)
        return summaries.transform_rows(context, recent)

    return await page(
        request, "transforms.html", rows=await blocking(rows), folder=context.registry.directory
    )


@routes.get("/transforms/{name}", response_class=HTMLResponse)
async def transform(
    request: Request,
    name: str,
    context: Context,
    first: str = Query("", alias="from"),
    second: str = Query("", alias="to"),
    saved: str = "",
    restored: str = Query("", max_length=history.MAX_VERSION_CHARS),
) -> HTMLResponse:
    """The editor and the version history; `from` and `to` (two versions) show their diff;
    `saved` or `restored` (where a save or a restore redirects) say how it ended."""
    values = await editor_values(context, name)
    if saved or restored:
        values["saved"] = await blocking(saves.outcome, context, name, values["source"])
        values["restored"] = restored
    if first or second:
        try:
            values["compared"] = await blocking(history.compare, context.store, name, first, second)
        except history.UnknownVersion as error:
            raise HTTPException(404, str(error)) from None
    return await page(request, "transform.html", **values)


async def editor_values(context: Context, name: str, **extra: Any) -> dict[str, Any]:
    """What the editor page shows for transform `name` (404 when there is no such file)."""
    registry = context.registry
    try:
        source = await blocking(files.read, registry.directory, name)
    except files.UnknownTransform as error:
        raise HTTPException(404, str(error)) from None
    events = await blocking(context.store.list_events, samples.RECENT_EVENTS)
    current = registry.current().get(name)
    kept = await blocking(context.store.list_versions, name)
    load_error = registry.errors.get(name)
    beats = await blocking(context.store.heartbeats, instances.LIVE_SECONDS)
    return {
        # Other hosts run their own copy of the folder: a save here reaches this host's only.
        "other_hosts": sorted({beat.host for beat in beats} - {socket.gethostname()}),
        "name": name,
        "source": source,  # the file's text, until `extra` gives the editor's
        "version": current.version if current else None,
        "history": history.listing(kept, source, current, load_error),
        "compared": None,
        "load_error": load_error,
        "enabled": registry.settings(name).enabled,
        "examples": samples.example_choices(),
        "stored": samples.stored_choices(events),
        "chosen": await blocking(default_sample, context, name),
        "custom": "",
        "trial": None,
        "saved": None,
        "impact": None,
    } | extra


def default_sample(context: Context, name: str) -> str:
    """An example of the type this transform last did something with, or payment.succeeded."""
    for delivery in context.store.list_deliveries(None, 200):
        useful = delivery.status not in (DeliveryStatus.SKIPPED, DeliveryStatus.CANCELLED)
        if delivery.transform == name and useful and delivery.event_type in samples.example_types():
            return f"example:{delivery.event_type}"
    return f"example:{samples.DEFAULT_TYPE}"


@routes.get("/deliveries", response_class=HTMLResponse)
async def deliveries(
    request: Request,
    context: Context,
    wanted: Annotated[reading.DeliveryFilter, Depends(delivery_filter)],
    before: int | None = Query(None, ge=1, le=MAX_ID),
) -> HTMLResponse:
    found = await blocking(reading.deliveries, context.store, wanted, time.time(), before=before)
    older = None
    if found.older is not None:
        older = request.url.include_query_params(before=found.older)
    # Counted up to a bound on every render (the list refreshes itself): the confirmation
    # counts them all.
    replayable = await blocking(
        bulk_replay.count, context.store, wanted.filters(time.time()), SHOWN_REPLAYABLE + 1
    )
    return await page(
        request,
        "deliveries.html",
        found=found,
        wanted=wanted,
        older=older,
        replayable=replayable,
        shown_replayable=SHOWN_REPLAYABLE,
        statuses=[s.value for s in DeliveryStatus],
        transforms=sorted(
            set(files.names(context.registry.directory)) | context.registry.current().keys()
        ),
        event_types=samples.example_types(),
        ranges=reading.RANGES,
    )


def delivery_filter(
    status: str = "",
    transform: str = "",
    event_type: str = "",
    range: str = "",
    q: str = "",
    destination: str = "",
    since: str = "",
    until: str = "",
) -> reading.DeliveryFilter:
    """The deliveries page's filters from its URL (the API's names, and `range`)."""
    if status and status not in DeliveryStatus.__members__.values():
        raise HTTPException(400, f"unknown status {status!r}")
    search = q.strip()[:1000]
    if search:
        try:
            query_terms(search)
        except SearchError as error:
            raise HTTPException(400, str(error)) from None
    return reading.DeliveryFilter(
        DeliveryStatus(status) if status else None,
        transform.strip(),
        event_type.strip(),
        range if range in reading.RANGES else "",
        search,
        destination.strip(),
        parse_since(since.strip()),
        parse_since(until.strip(), "until"),
    )


@routes.get("/deliveries/{delivery_id}", response_class=HTMLResponse)
async def delivery(request: Request, delivery_id: int, context: Context) -> HTMLResponse:
    values = await delivery_values(context, delivery_id)
    return await page(request, "delivery.html", **values)


async def delivery_values(context: Context, delivery_id: int, **extra: Any) -> dict[str, Any]:
    """What the delivery page shows (404 when there is no such delivery)."""
    store = context.store
    found = await blocking(store.get_delivery, delivery_id) if delivery_id <= MAX_ID else None
    if found is None:
        raise HTTPException(404, f"no delivery {delivery_id}")
    event = await blocking(store.get_event, found.event_id)
    attempts = await blocking(store.attempts, delivery_id)
    siblings = await blocking(store.list_deliveries, None, 1000, found.event_id)
    shown = None if found.request is None else found.request.redacted()
    return {
        "delivery": found,
        "event": event,
        "attempts": attempts,
        "request_shown": shown,
        "wire": None if shown is None else on_the_wire(found, shown, context.segment_base_url),
        "successors": successors(found, siblings),
        "replay_error": None,
    } | extra


def on_the_wire(
    delivery: Delivery, shown: dict[str, Any], segment_base_url: str
) -> dict[str, Any] | None:
    """A Segment call as the wire carries it: its message, with the `messageId` Segment
    dedups on, in a batch to the configured endpoint (None: sent as the handler made it)."""
    default_id = batching.message_id(
        delivery.webhook_id, delivery.transform, delivery.version, delivery.index
    )
    sent = batching.as_sent(shown["url"], shown["payload"], segment_base_url, default_id)
    if sent is None:
        return None
    url, message = sent
    return {"method": "POST", "url": url, "payload": {"batch": [message]}}


def successors(delivery: Delivery, siblings: list[Delivery]) -> list[Delivery]:
    """The deliveries that replaced this one: same event and transform, a later generation."""
    later = [
        d
        for d in siblings
        if d.transform == delivery.transform and d.generation > delivery.generation
    ]
    if not later:
        return []
    newest = max(d.generation for d in later)
    return sorted((d for d in later if d.generation == newest), key=lambda d: d.index)


@routes.get("/events/{event_id}", response_class=HTMLResponse)
async def event(request: Request, event_id: int, context: Context) -> HTMLResponse:
    store = context.store
    found = await blocking(store.get_event, event_id) if event_id <= MAX_ID else None
    if found is None:
        raise HTTPException(404, f"no event {event_id}")
    made = await blocking(store.list_deliveries, None, 1000, event_id)
    by_transform: dict[str, list[Delivery]] = {}
    for item in sorted(made, key=lambda d: (d.transform, -d.generation, d.index)):
        by_transform.setdefault(item.transform, []).append(item)
    return await page(
        request, "event.html", event=found, by_transform=by_transform, pretty_request=_shown
    )


def _shown(item: Delivery) -> str:
    return "" if item.request is None else pretty(item.request.redacted())


@routes.get("/audit", response_class=HTMLResponse)
async def audit_trail(
    request: Request, context: Context, before: int | None = Query(None, ge=1, le=MAX_ID)
) -> HTMLResponse:
    """Who saved, restored, replayed, backfilled, erased or logged in, and when."""
    entries = await blocking(context.store.list_audit, AUDIT_PAGE, before=before)
    older = None
    if len(entries) == AUDIT_PAGE:
        older = request.url.include_query_params(before=entries[-1].id)
    return await page(request, "audit.html", entries=entries, older=older)
