"""The HTTP interface: webhook ingest, health, metrics and the admin API.

Ingest does only what must happen before answering: read the body (with a
limit), verify the signature, check the body is an event, and commit it to
the store. Transforms and deliveries happen later, in the pipeline. Answers:
200 stored (or already stored), 400 unusable body, 401 bad signature, 413 too
large, 503 the store failed (Dodo retries).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response

from dodo_transform.errors import PayloadError, SignatureError, StorageError
from dodo_transform.metrics import CONTENT_TYPE
from dodo_transform.pipeline.runner import ReplayError
from dodo_transform.pipeline.runner import replay as replay_delivery
from dodo_transform.store.sqlite import REPLAYABLE_STATUSES, Delivery, NewEvent, StoredEvent
from dodo_transform.transforms.engine import Event

if TYPE_CHECKING:
    from dodo_transform.service import Service

log = logging.getLogger("dodo_transform.ingest")


class BodyTooLarge(Exception):
    pass


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than `limit` bytes without reading them all."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(service: Service) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(title="dodo-transform", lifespan=lifespan, docs_url=None, redoc_url=None)
    add_ingest_routes(app, service)
    add_health_routes(app, service)
    add_admin_routes(app, service)
    return app


def refuse(service: Service, status: int, reason: str, error: str) -> JSONResponse:
    service.metrics.rejected.labels(reason).inc()
    log.info("webhook refused", extra={"status": status, "reason": reason, "error": error})
    return JSONResponse({"error": error, "reason": reason}, status_code=status)


def add_ingest_routes(app: FastAPI, service: Service) -> None:
    @app.post("/webhooks/dodo")
    async def receive_webhook(request: Request) -> JSONResponse:
        try:
            body = await read_body(request, service.settings.max_body_bytes)
        except BodyTooLarge:
            limit = service.settings.max_body_bytes
            return refuse(service, 413, "too_large", f"body is larger than {limit} bytes")
        try:
            webhook_id = service.verifier.verify(body, request.headers)
        except SignatureError as error:
            return refuse(service, 401, "signature", f"signature not verified: {error}")
        try:
            event = Event.from_body(body, webhook_id)
        except PayloadError as error:
            return refuse(service, 400, "payload", f"not a Dodo webhook event: {error}")
        try:
            event_id, created = await service.intake.add(
                NewEvent(webhook_id, event.event_type, body)
            )
        except StorageError as error:
            log.error("event not stored", extra={"webhook_id": webhook_id, "error": str(error)})
            service.metrics.rejected.labels("storage").inc()
            return JSONResponse(
                {"error": "the event could not be stored; retry later", "reason": "storage"},
                status_code=503,
                headers={"Retry-After": "5"},
            )
        (service.metrics.received if created else service.metrics.duplicates).inc()
        log.info(
            "webhook stored" if created else "webhook already stored",
            extra={"webhook_id": webhook_id, "event_type": event.event_type, "event_id": event_id},
        )
        service.notify()
        return JSONResponse({"id": event_id, "duplicate": not created})


def add_health_routes(app: FastAPI, service: Service) -> None:
    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        problems = []
        try:
            await asyncio.to_thread(service.store.ping)
        except StorageError as error:
            problems.append(str(error))
        if not service.loaded:
            problems.append("transforms not loaded yet")
        if not service.pipeline_running:
            problems.append("the worker process is not running")
        status = 503 if problems else 200
        return JSONResponse(
            {"status": "not ready" if problems else "ready", "problems": problems},
            status_code=status,
        )

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(service.render_metrics(), media_type=CONTENT_TYPE)


def admin_guard(service: Service) -> Callable[[Request], Awaitable[None]]:
    """Bearer token when one is set; otherwise loopback callers only."""

    async def guard(request: Request) -> None:
        token = service.settings.admin_token
        if token is not None and token.get_secret_value():
            offered = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(offered.encode(), token.get_secret_value().encode()):
                raise HTTPException(401, "admin API: send Authorization: Bearer <token>")
            return
        host = request.client.host if request.client else ""
        if not _is_loopback(host):
            raise HTTPException(
                403, "admin API answers only on loopback unless DODO_TRANSFORM_ADMIN_TOKEN is set"
            )

    return guard


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


async def stored(method: Callable[..., Any], *args: Any) -> Any:
    """Call a blocking store operation off the event loop; a store failure answers 503."""
    try:
        return await asyncio.to_thread(method, *args)
    except StorageError as error:
        raise HTTPException(503, str(error)) from None


def add_admin_routes(app: FastAPI, service: Service) -> None:
    guarded = [Depends(admin_guard(service))]
    store = service.store

    @app.get("/api/events", dependencies=guarded)
    async def list_events(limit: int = Query(50, ge=1, le=1000)) -> list[dict[str, Any]]:
        events = await stored(store.list_events, limit)
        answer = []
        for event in events:
            deliveries = await stored(store.list_deliveries, None, 1000, event.id)
            answer.append(_event_json(event) | {"deliveries": [d.to_json() for d in deliveries]})
        return answer

    @app.get("/api/events/{event_id}", dependencies=guarded)
    async def get_event(event_id: int) -> dict[str, Any]:
        event = await stored(store.get_event, event_id)
        if event is None:
            raise HTTPException(404, f"no event {event_id}")
        deliveries = await stored(store.list_deliveries, None, 1000, event_id)
        return _event_json(event) | {
            "body": event.body.decode("utf-8"),
            "deliveries": [await _with_attempts(service, d) for d in deliveries],
        }

    @app.get("/api/deliveries", dependencies=guarded)
    async def list_deliveries(
        status: str | None = None, limit: int = Query(100, ge=1, le=1000)
    ) -> list[dict[str, Any]]:
        return [d.to_json() for d in await stored(store.list_deliveries, status, limit)]

    @app.get("/api/deliveries/{delivery_id}", dependencies=guarded)
    async def get_delivery(delivery_id: int) -> dict[str, Any]:
        delivery = await stored(store.get_delivery, delivery_id)
        if delivery is None:
            raise HTTPException(404, f"no delivery {delivery_id}")
        return await _with_attempts(service, delivery)

    @app.post("/api/deliveries/{delivery_id}/replay", dependencies=guarded)
    async def replay(delivery_id: int) -> dict[str, Any]:
        try:
            results = await stored(replay_delivery, store, service.registry, delivery_id)
        except ReplayError as error:
            raise HTTPException(409, str(error)) from None
        return {"replayed": delivery_id, "statuses": [r.status for r in results]}

    @app.post("/api/replay", dependencies=guarded)
    async def replay_all(status: str = Query("failed")) -> dict[str, Any]:
        if status not in REPLAYABLE_STATUSES:
            raise HTTPException(400, f"status must be one of {', '.join(REPLAYABLE_STATUSES)}")
        replayed, errors = [], []
        seen: set[tuple[int, str]] = set()
        for delivery in await stored(store.list_deliveries, status, 10_000):
            if (delivery.event_id, delivery.transform) in seen:
                continue
            seen.add((delivery.event_id, delivery.transform))
            try:
                await stored(replay_delivery, store, service.registry, delivery.id)
                replayed.append(delivery.id)
            except ReplayError as error:
                errors.append(str(error))
        return {"replayed": replayed, "errors": errors}

    @app.get("/api/transforms", dependencies=guarded)
    async def transforms() -> list[dict[str, Any]]:
        registry = service.registry
        current, errors = registry.current(), registry.errors
        names = sorted(current.keys() | errors.keys())
        return [
            {
                "name": name,
                "version": current[name].version if name in current else None,
                "file": current[name].filename if name in current else None,
                "enabled": registry.settings(name).enabled,
                "load_error": errors.get(name),
            }
            for name in names
        ]


def _event_json(event: StoredEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "webhook_id": event.webhook_id,
        "event_type": event.event_type,
        "received_at": event.received_at,
    }


async def _with_attempts(service: Service, delivery: Delivery) -> dict[str, Any]:
    attempts = await stored(service.store.attempts, delivery.id)
    return delivery.to_json() | {
        "attempt_log": [
            {
                "at": a.at,
                "status_code": a.status_code,
                "error": a.error,
                "duration_ms": a.duration_ms,
            }
            for a in attempts
        ]
    }
