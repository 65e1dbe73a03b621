"""The console's bulk replays: "Replay N deliveries" from a filtered list, a confirmation that
names N, then the replay's progress, live, with a button that cancels it.

The worker runs it (pipeline/bulk_replay.py); these pages ask, show and cancel. Starting and
cancelling are POSTs with the CSRF token (see `session.py`).
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from dodo_transform.pipeline import bulk_replay
from dodo_transform.store import DeliveryStatus, Filters, ReplayMode
from dodo_transform.web import audit
from dodo_transform.web.admin import bulk_detail, parse_since
from dodo_transform.web.console import reading, session
from dodo_transform.web.console.pages import MAX_ID, blocking, delivery_filter
from dodo_transform.web.console.rendering import page, redirect
from dodo_transform.web.context import Context

routes = APIRouter(dependencies=[Depends(session.console_guard)], include_in_schema=False)
Text = Annotated[str, Form()]
Wanted = Annotated[reading.DeliveryFilter, Depends(delivery_filter)]


@routes.get("/replays/new", response_class=HTMLResponse)
async def confirm(request: Request, context: Context, wanted: Wanted) -> HTMLResponse:
    """The confirmation: how many deliveries the list's filters would replay, and a few."""
    filters = wanted.filters(time.time())
    try:
        count, sample = await blocking(bulk_replay.preview, context.store, filters)
    except bulk_replay.BulkReplayError as error:
        raise HTTPException(400, str(error)) from None
    return await page(
        request, "replay_confirm.html", count=count, sample=sample, filters=filters.to_json()
    )


@routes.post("/replays")
async def start(
    request: Request,
    context: Context,
    csrf: Text = "",
    mode: Text = ReplayMode.TRANSFORM.value,
    q: Text = "",
    transform: Text = "",
    event_type: Text = "",
    status: Text = "",
    destination: Text = "",
    since: Text = "",
    until: Text = "",
) -> Response:
    """Start the bulk replay the confirmation showed, and show its progress."""
    session.check_csrf(request, csrf)
    if mode not in ReplayMode.__members__.values():
        raise HTTPException(400, f"unknown mode {mode!r}: transform or original")
    if status and status not in DeliveryStatus.__members__.values():
        raise HTTPException(400, f"unknown status {status!r}")
    filters = Filters(
        q=q or None,
        transform=transform or None,
        event_type=event_type or None,
        status=DeliveryStatus(status) if status else None,
        destination=destination or None,
        since=parse_since(since),
        until=parse_since(until, "until"),
    )
    try:
        bulk_replay.check_filters(filters)
    except bulk_replay.BulkReplayError as error:
        raise HTTPException(400, str(error)) from None
    bulk_id = await blocking(context.store.start_bulk_replay, filters, ReplayMode(mode))
    context.notify()
    started = await blocking(context.store.get_bulk_replay, bulk_id)
    assert started is not None
    await audit.record(
        request, context, "bulk replay", f"bulk replay {bulk_id}", bulk_detail(started)
    )
    return redirect(f"/replays/{bulk_id}")


@routes.get("/replays", response_class=HTMLResponse)
async def listing(request: Request, context: Context) -> HTMLResponse:
    found = await blocking(context.store.list_bulk_replays, 50)
    return await page(request, "replays.html", replays=found)


@routes.get("/replays/{bulk_id}", response_class=HTMLResponse)
async def progress(request: Request, bulk_id: int, context: Context) -> HTMLResponse:
    found = await blocking(context.store.get_bulk_replay, bulk_id) if bulk_id <= MAX_ID else None
    if found is None:
        raise HTTPException(404, f"no bulk replay {bulk_id}")
    return await page(request, "replay.html", bulk=found)


@routes.post("/replays/{bulk_id}/cancel")
async def cancel(request: Request, bulk_id: int, context: Context, csrf: Text = "") -> Response:
    """Stop it: the deliveries it has not taken stay as they are."""
    session.check_csrf(request, csrf)
    if bulk_id > MAX_ID or not await blocking(context.store.get_bulk_replay, bulk_id):
        raise HTTPException(404, f"no bulk replay {bulk_id}")
    if await blocking(context.store.cancel_bulk_replay, bulk_id):
        cancelled = await blocking(context.store.get_bulk_replay, bulk_id)
        assert cancelled is not None
        taken = f"after {cancelled.done} of {cancelled.total}"
        await audit.record(
            request, context, "bulk replay cancelled", f"bulk replay {bulk_id}", taken
        )
    return redirect(f"/replays/{bulk_id}")
