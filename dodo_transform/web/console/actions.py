"""What the console changes or runs: test runs, saves, restores and replays. Every one is a
POST with a CSRF token (see `session.py`).

The pages' script sends the editor's forms with `X-Console-Fragment: 1` and puts
the answer (a fragment) into the page; without script, the same POST answers
the whole page.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from dodo_transform.pipeline.replay import ReplayError, check_replayable
from dodo_transform.web import audit
from dodo_transform.web.console import files, history, impact, samples, saves, session, trials
from dodo_transform.web.console.pages import MAX_ID, blocking, delivery_values, editor_values
from dodo_transform.web.console.rendering import page, redirect
from dodo_transform.web.console.runs import runs_of
from dodo_transform.web.context import Context

MAX_SOURCE_CHARS = 512 * 1024
REPLAY_WAIT_SECONDS = 10.0
REPLAY_POLL_SECONDS = 0.05

routes = APIRouter(dependencies=[Depends(session.console_guard)], include_in_schema=False)
Text = Annotated[str, Form()]


def wants_fragment(request: Request) -> bool:
    return request.headers.get("x-console-fragment") == "1"


def _source(text: str) -> str:
    if len(text) > MAX_SOURCE_CHARS:
        raise HTTPException(413, f"a transform is limited to {MAX_SOURCE_CHARS} characters")
    # Browsers send a form's line breaks as CRLF; the file keeps what the editor showed.
    return text.replace("\r\n", "\n")


@routes.post("/transforms/{name}/test", response_class=HTMLResponse)
async def run_test(
    request: Request,
    name: str,
    context: Context,
    source: Text,
    csrf: Text = "",
    sample: Text = "",
    custom: Text = "",
) -> HTMLResponse:
    """Run the editor's source (unsaved) on the chosen sample, in the console's sandbox."""
    session.check_csrf(request, csrf)
    code = _source(source)
    if context.run_trials is None:
        raise HTTPException(503, "test runs are not available in this process")
    custom = custom.replace("\r\n", "\n")
    if len(custom.encode()) > context.max_body_bytes:
        raise HTTPException(413, f"a sample body is limited to {context.max_body_bytes} bytes")
    await blocking(files.path_of, context.registry.directory, name)
    trial: trials.Trial | None = None
    sample_error: str | None = None
    try:
        event = await blocking(samples.resolve, sample, custom, context.store)
        trial = await runs_of(request).run(trials.run, context, name, code, event)
    except samples.SampleError as error:
        sample_error = str(error)
    values: dict[str, Any] = {"trial": trial, "sample_error": sample_error}
    if wants_fragment(request):
        return await page(request, "_test_result.html", **values)
    full = await editor_values(context, name, source=code, chosen=sample, custom=custom, **values)
    return await page(request, "transform.html", **full)


@routes.post("/transforms/{name}/impact", response_class=HTMLResponse)
async def impact_preview(
    request: Request, name: str, context: Context, source: Text, csrf: Text = ""
) -> HTMLResponse:
    """Run the editor's source and the version in service on the newest stored events, and
    show what would change."""
    session.check_csrf(request, csrf)
    code = _source(source)
    if context.run_trials is None:
        raise HTTPException(503, "test runs are not available in this process")
    await blocking(files.path_of, context.registry.directory, name)
    found = await runs_of(request).run(impact.preview, context, name, code)
    if wants_fragment(request):
        return await page(request, "_impact.html", impact=found)
    full = await editor_values(context, name, source=code, impact=found)
    return await page(request, "transform.html", **full)


@routes.post("/transforms/{name}/save", response_class=HTMLResponse)
async def save(
    request: Request, name: str, context: Context, source: Text, csrf: Text = ""
) -> Response:
    """Write the file (atomically) and reload: the registry says whether it went live."""
    session.check_csrf(request, csrf)
    code = _source(source)
    registry = context.registry
    try:
        await blocking(files.write, registry.directory, name, code)
    except files.UnknownTransform as error:
        raise HTTPException(404, str(error)) from None
    except OSError as error:
        current = registry.current().get(name)
        saved = saves.Saved(False, current.version if current else None, f"not saved: {error}")
    else:
        await blocking(registry.reload)
        saved = await blocking(saves.outcome, context, name, code)
        await blocking(saves.keep, context, name, saved)
    await audit.record(request, context, "save", f"transform {name}", saved_detail(saved))
    if wants_fragment(request):
        return await page(request, "_save_result.html", saved=saved)
    if saved.written:
        # Post/redirect/get: a reload of the page shown next must not save again.
        return redirect(f"/transforms/{name}?saved=1")
    return await page(request, "transform.html", **await editor_values(context, name, saved=saved))


@routes.post("/transforms/{name}/restore", response_class=HTMLResponse)
async def restore(
    request: Request, name: str, context: Context, version: Text, csrf: Text = ""
) -> Response:
    """Write a kept version's source to the file, as a save does, and reload."""
    session.check_csrf(request, csrf)
    registry = context.registry
    try:
        await blocking(files.path_of, registry.directory, name)
        kept = await blocking(history.find, context.store, name, version)
        await blocking(files.write, registry.directory, name, kept.source)
    except (files.UnknownTransform, history.UnknownVersion) as error:
        raise HTTPException(404, str(error)) from None
    except OSError as error:
        current = registry.current().get(name)
        saved = saves.Saved(False, current.version if current else None, f"not saved: {error}")
    else:
        await blocking(registry.reload)
        saved = await blocking(saves.outcome, context, name, kept.source)
        await blocking(saves.keep, context, name, saved)
    detail = f"version {version} restored; {saved_detail(saved)}"
    await audit.record(request, context, "restore", f"transform {name}", detail)
    if wants_fragment(request):
        return await page(request, "_save_result.html", saved=saved, restored=version)
    if saved.written:
        return redirect(f"/transforms/{name}?{urlencode({'restored': version})}")
    values = await editor_values(context, name, saved=saved, restored=version)
    return await page(request, "transform.html", **values)


def saved_detail(saved: saves.Saved) -> str:
    """How a save ended, as the audit trail records it."""
    if saved.live:
        return f"live as version {saved.version}"
    return f"not live ({saved.error}); version {saved.version} still runs"


@routes.post("/deliveries/{delivery_id}/replay")
async def replay(request: Request, delivery_id: int, context: Context, csrf: Text = "") -> Response:
    """Ask the worker to replay, wait for it a little, and show the delivery again."""
    session.check_csrf(request, csrf)
    store = context.store
    if delivery_id > MAX_ID:
        raise HTTPException(404, f"no delivery {delivery_id}")
    try:
        await blocking(check_replayable, store, delivery_id)
        await blocking(store.request_replays, [delivery_id])
        await audit.record(request, context, "replay", f"delivery {delivery_id}")
        context.notify()
        await _wait_for_replay(context, delivery_id)
    except ReplayError as error:
        values: dict[str, Any] = await delivery_values(
            context, delivery_id, replay_error=str(error)
        )
        return await page(request, "delivery.html", status_code=409, **values)
    return redirect(f"/deliveries/{delivery_id}")


async def _wait_for_replay(context: Context, delivery_id: int) -> None:
    """Until the worker has run the replay (or REPLAY_WAIT_SECONDS: it stays queued)."""
    deadline = time.monotonic() + REPLAY_WAIT_SECONDS
    while time.monotonic() < deadline:
        done = await blocking(context.store.get_replay, delivery_id)
        if done is not None and done.done_at is not None:
            if done.error is not None:
                raise ReplayError(done.error)
            return
        await asyncio.sleep(REPLAY_POLL_SECONDS)
