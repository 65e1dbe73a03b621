"""The console's part of the app: its routers, static files and error pages."""

from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from dodo_transform.web.console import actions, event_fields, login, pages, replays
from dodo_transform.web.console.rendering import SECURITY_HEADERS, page, redirect
from dodo_transform.web.console.runs import Runs
from dodo_transform.web.console.session import LoginRequired, login_url

STATIC = Path(__file__).resolve().parent / "static"
STATIC_PATH = "/static/console"
# Paths whose errors stay JSON: the API and the webhook endpoint answer machines.
_MACHINE_PATHS = ("/api", "/webhooks", "/healthz", "/readyz", "/metrics")


class _Static(StaticFiles):
    """The bundle and styles, with the console's security headers."""

    async def get_response(self, path: str, scope: MutableMapping[str, Any]) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS | {"Cache-Control": "no-cache"})
        return response


def install(app: FastAPI) -> None:
    app.state.console_runs = Runs()
    app.include_router(login.routes)
    app.include_router(pages.routes)
    app.include_router(actions.routes)
    app.include_router(replays.routes)
    app.include_router(event_fields.routes)
    app.mount(STATIC_PATH, _Static(directory=STATIC), name="console-static")
    app.add_exception_handler(LoginRequired, _to_login)
    app.add_exception_handler(StarletteHTTPException, _error_page)


async def _to_login(_: Request, error: Exception) -> Response:
    assert isinstance(error, LoginRequired)
    return redirect(login_url(error.next_url))


async def _error_page(request: Request, error: Exception) -> Response:
    """An HTML page for a person's browser; the usual JSON for everyone else."""
    assert isinstance(error, StarletteHTTPException)
    machine = request.url.path.startswith(_MACHINE_PATHS)
    if machine or "text/html" not in request.headers.get("accept", ""):
        return await http_exception_handler(request, error)
    shown = await page(
        request,
        "error.html",
        status_code=error.status_code,
        status=error.status_code,
        detail=error.detail,
    )
    shown.headers.update(error.headers or {})  # Retry-After, say
    return shown
