"""`/healthz` (the process answers), `/readyz` (it can take and process webhooks), `/metrics`.

None of them waits behind other work. `/readyz` asks the store on a thread of its own, never on
asyncio's default executor, where the admin API's and the console's calls queue (and where a
dozen console previews of a looping handler once held `/readyz` for 10-20 s); and it gives the
store `PING_SECONDS` to answer, so a store that hangs is reported, not waited for.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from dodo_transform.errors import StorageError
from dodo_transform.metrics import CONTENT_TYPE
from dodo_transform.web.context import Context

PING_SECONDS = 5.0
# Two threads: one ping hung on a dead disk leaves the next probe a thread to report it from.
_PINGS = ThreadPoolExecutor(2, thread_name_prefix="readyz")

routes = APIRouter(include_in_schema=False)


@routes.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@routes.get("/readyz")
async def readyz(context: Context) -> JSONResponse:
    problems = []
    store_problem = await ping(context)
    if store_problem is not None:
        problems.append(store_problem)
    if not context.loaded():
        problems.append("transforms not loaded yet")
    problems += context.problems()
    return JSONResponse(
        {"status": "not ready" if problems else "ready", "problems": problems},
        status_code=503 if problems else 200,
    )


async def ping(context: Context) -> str | None:
    """Why the store cannot take events now (None: it can)."""
    asked = asyncio.get_running_loop().run_in_executor(_PINGS, context.store.ping)
    try:
        await asyncio.wait_for(asked, PING_SECONDS)
    except StorageError as error:
        return str(error)
    except TimeoutError:
        return f"the store did not answer within {PING_SECONDS:g} s"
    return None


@routes.get("/metrics")
async def metrics(context: Context) -> Response:
    return Response(context.metrics.render() + context.pipeline_metrics(), media_type=CONTENT_TYPE)
