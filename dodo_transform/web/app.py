"""The HTTP app: webhook ingest, health and metrics, and the admin API, over one `WebContext`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from dodo_transform.web import admin, health, ingest
from dodo_transform.web.console import mount as console
from dodo_transform.web.context import WebContext


def create_app(context: WebContext) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await context.start()
        try:
            yield
        finally:
            await context.stop()

    app = FastAPI(title="dodo-transform", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.context = context  # what routes reach through `context_of`
    app.include_router(health.routes)
    if context.serves_webhooks:
        app.include_router(ingest.routes)
        app.include_router(admin.routes)
        console.install(app)
    admin.add_error_handlers(app)
    return app
