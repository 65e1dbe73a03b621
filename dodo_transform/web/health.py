"""`/healthz` (the process answers), `/readyz` (it can take and process webhooks), `/metrics`."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from dodo_transform.errors import StorageError
from dodo_transform.metrics import CONTENT_TYPE
from dodo_transform.web.context import Context

routes = APIRouter(include_in_schema=False)


@routes.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@routes.get("/readyz")
async def readyz(context: Context) -> JSONResponse:
    problems = []
    try:
        await asyncio.to_thread(context.store.ping)
    except StorageError as error:
        problems.append(str(error))
    if not context.loaded():
        problems.append("transforms not loaded yet")
    problems += context.problems()
    return JSONResponse(
        {"status": "not ready" if problems else "ready", "problems": problems},
        status_code=503 if problems else 200,
    )


@routes.get("/metrics")
async def metrics(context: Context) -> Response:
    return Response(context.metrics.render() + context.pipeline_metrics(), media_type=CONTENT_TYPE)
