"""The HTTP app: webhook ingest, health and metrics, and the admin API, over one `WebContext`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from dodo_transform.settings import WEBHOOK_PATH
from dodo_transform.web import admin, health, ingest
from dodo_transform.web.console import mount as console
from dodo_transform.web.context import WebContext
from dodo_transform.web.scrubbing import ScrubAnswers


class App(FastAPI):
    """FastAPI, with `POST /webhooks/dodo` handed to its ASGI app before FastAPI's middleware
    and routing, which cost more than the rest of ingest but for the store (see
    docs/performance.md). The route is in the router too, for its 405 to other methods."""

    webhook: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.webhook is not None
            and scope["type"] == "http"
            and scope["path"] == WEBHOOK_PATH
            and scope["method"] == "POST"
        ):
            await self.webhook(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def create_app(context: WebContext) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await context.start()
        try:
            yield
        finally:
            await context.stop()

    app = App(title="dodo-transform", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.context = context  # what routes reach through `context_of`
    app.include_router(health.routes)
    if context.serves_webhooks:
        app.webhook = ingest.Ingest(context)
        app.router.routes.append(
            Route(WEBHOOK_PATH, app.webhook, methods=["POST"], include_in_schema=False)
        )
        app.include_router(admin.routes)
        console.install(app)
        app.add_middleware(ScrubAnswers, secrets=context.secrets)
    admin.add_error_handlers(app)
    return app
