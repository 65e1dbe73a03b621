"""The composition root: the service's parts, built from the settings, started and stopped in order.

`build_service(settings, **parts)` is the one place parts are made and wired,
for the HTTP process (`serve`), the worker process and the tests alike; a test
replaces a part (store, clock, transport, watcher) by passing it.

Start: load the transforms, start the pipeline (by default in its own worker
process, see pipeline/worker.py), watch the folder.
Stop: stop watching, stop the pipeline (in-flight work finishes or is released),
commit what the intake holds, close the store.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from functools import cached_property, partial
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from dodo_transform import instances, logs, malloc, signing, startup
from dodo_transform.errors import ConfigError, StorageError
from dodo_transform.metrics import IngestMetrics, PipelineMetrics
from dodo_transform.outgoing.redaction import secret_parts
from dodo_transform.pipeline import worker
from dodo_transform.pipeline.assembly import PipelineConfig, build_pipeline
from dodo_transform.pipeline.handles import Elsewhere, Here, InWorker, PipelineHandle
from dodo_transform.pipeline.runner import IDLE_POLL_SECONDS, Pipeline
from dodo_transform.pipeline.worker import WorkerProcess
from dodo_transform.settings import (
    Settings,
)
from dodo_transform.store import DeliveryStatus, Store, instance_id, is_postgres, open_store
from dodo_transform.store.intake import Intake
from dodo_transform.tracing import NO_TRACING, Tracing, tracing_for
from dodo_transform.transforms.registry import Registry
from dodo_transform.transforms.reload import Watcher, reload_on_change, watch_folder
from dodo_transform.transforms.sandbox_processes import SandboxPool
from dodo_transform.web import server as http_server
from dodo_transform.web.app import create_app
from dodo_transform.web.context import WebContext
from dodo_transform.webhook_secret import signing_secrets

log = logging.getLogger("dodo_transform.service")


class Service:
    """The parts of one process and their order of starting and stopping.

    `intake` and `verifier` exist in the HTTP process; `handle` says where the pipeline runs
    (here, in a worker process this one supervises, or on other instances) and `pipeline`
    is the pipeline itself where it runs here (the worker process, or the HTTP process when
    it runs in-process).
    """

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        registry: Registry,
        watcher: Watcher,
        handle: PipelineHandle,
        pipeline: Pipeline | None = None,
        pipeline_metrics: PipelineMetrics | None = None,
        intake: Intake | None = None,
        verifier: signing.Verifier | None = None,
        created_secret: bool = False,
        signing_secrets: frozenset[str] = frozenset(),
        tracing: Tracing = NO_TRACING,
    ) -> None:
        self.settings = settings
        self.tracing = tracing
        self.store = store
        self.registry = registry
        self.handle = handle
        self.pipeline = pipeline
        self.pipeline_metrics = pipeline_metrics or PipelineMetrics()
        self.intake = intake
        self.verifier = verifier
        self.created_secret = created_secret
        # The settings' secrets and the signing secrets never change while it runs: once.
        self._own_secrets = settings.secret_values() | signing_secrets
        self.metrics = IngestMetrics()
        self.loaded = False
        self._watch = watcher
        self._stopping = asyncio.Event()
        self._helpers: list[asyncio.Task[None]] = []

    # --- what the web edge sees ---------------------------------------------------------------

    @cached_property
    def app(self) -> FastAPI:
        """The HTTP app (ingest, health, metrics, admin API), running this service."""
        return create_app(self.web_context())

    def web_context(self) -> WebContext:
        if self.intake is None or self.verifier is None:
            raise ConfigError("this service has no HTTP side (it is a worker)")
        if self.settings.role == "worker":
            # Health, readiness and metrics only: the HTTP process supervises the worker
            # process, and orchestrators probe it; webhooks sent here by mistake get a 404.
            return replace(self._full_web_context(), serves_webhooks=False)
        return self._full_web_context()

    def _full_web_context(self) -> WebContext:
        assert self.intake is not None and self.verifier is not None
        self.metrics.watch_queue("events", _depth(self.store.pending_events))
        self.metrics.watch_queue(
            "deliveries", _depth(lambda: self.store.counts().get(DeliveryStatus.PENDING, 0))
        )
        # The console's test runs: one sandbox process of their own, started on the first.
        trials = SandboxPool(1)

        async def stop() -> None:
            await self.stop()
            trials.close()

        return WebContext(
            store=self.store,
            intake=self.intake,
            verifier=self.verifier,
            registry=self.registry,
            metrics=self.metrics,
            max_body_bytes=self.settings.max_body_bytes,
            admin_token=self.settings.admin_token,
            notify=self.handle.notify,
            notify_events=self.handle.notify_events,
            problems=self.handle.problems,
            pipeline_metrics=self.handle.metrics_text,
            start=self.start,
            stop=stop,
            loaded=lambda: self.loaded,
            quarantined=self.handle.quarantined,
            paused=self.handle.paused,
            secrets=self.secrets,
            run_trials=trials.run,
            dry_run=self.settings.dry_run,
            segment_base_url=self.settings.segment_base_url,
            tracing=self.tracing,
        )

    def secrets(self) -> frozenset[str]:
        """Every secret the service knows: its settings' and transforms.toml's in force."""
        return self._own_secrets | self.registry.secret_values()

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        if not self.settings.transforms.is_dir():
            raise ConfigError(f"transforms folder {self.settings.transforms} does not exist")
        await asyncio.to_thread(self.registry.reload)
        self.loaded = True
        self._stopping = asyncio.Event()
        await self.handle.start(self._stopping)
        self._helpers.append(
            asyncio.create_task(
                reload_on_change(self.registry, self._stopping, self._watch), name="reload"
            )
        )
        if self.intake is not None:  # one heartbeat per instance: its HTTP process's
            started = time.time()
            beat = partial(instances.describe, self.settings, self.registry, started)
            await instances.beat(self.store, beat)
            self._helpers.append(
                asyncio.create_task(
                    instances.beating(self.store, beat, self._stopping), name="heartbeat"
                )
            )

    async def stop(self) -> None:
        self._stopping.set()
        for task in self._helpers:
            task.cancel()
        await asyncio.gather(*self._helpers, return_exceptions=True)
        if self.intake is not None:
            await asyncio.to_thread(instances.leave, self.store, instance_id(self.settings))
        await self.handle.stop()
        if self.intake is not None:
            await asyncio.to_thread(self.intake.close)
        self.store.close()
        await asyncio.to_thread(self.tracing.shutdown)  # what is batched goes out


def build_service(
    settings: Settings,
    *,
    in_worker: bool = False,
    store: Store | None = None,
    clock: Callable[[], float] = time.time,
    transport: httpx.AsyncBaseTransport | None = None,
    watcher: Watcher = watch_folder,
    idle_poll_seconds: float = IDLE_POLL_SECONDS,
) -> Service:
    """The service for this process, each part replaceable.

    The HTTP process (`in_worker=False`) gets the signing secret, the intake and the web
    edge, and runs the pipeline in a worker process unless `worker_process` is off. The
    worker process (`in_worker=True`) gets only the pipeline.
    """
    _check_role(settings)
    runs_pipeline = in_worker or settings.role != "ingest"
    pipeline_here = in_worker or (runs_pipeline and not settings.worker_process)
    separate_worker = runs_pipeline and not pipeline_here
    secrets, created = ([], False) if in_worker else signing_secrets(settings, create=True)
    if store is None:
        # The worker's writes can all be derived again from the events, which the HTTP
        # process commits durably; only one process releases stale leases at startup.
        store = open_store(settings, clock=clock, durable=not in_worker, claims_work=pipeline_here)
    # Both processes load the folder; where a worker process runs, it alone says what changed.
    registry = Registry(
        settings.transforms,
        settings.limits,
        environ=settings.variables(),
        log_changes=not separate_worker,
    )
    metrics = PipelineMetrics()
    tracing = tracing_for(settings.otel_endpoint)
    pipeline = (
        build_pipeline(
            PipelineConfig.from_settings(settings, idle_poll_seconds),
            store=store,
            registry=registry,
            metrics=metrics,
            clock=clock,
            transport=transport,
            tracing=tracing,
        )
        if pipeline_here
        else None
    )
    handle: PipelineHandle = (
        Here(pipeline, metrics)
        if pipeline is not None
        else InWorker(WorkerProcess(settings, worker_main))
        if separate_worker
        else Elsewhere()
    )
    service = Service(
        settings=settings,
        store=store,
        registry=registry,
        watcher=watcher,
        handle=handle,
        pipeline=pipeline,
        pipeline_metrics=metrics,
        intake=None if in_worker else Intake(store),
        verifier=None if in_worker else verifier_for(settings, secrets),
        created_secret=created,
        tracing=tracing,
        signing_secrets=frozenset(
            part
            for secret in secrets + settings.test_secrets
            for part in secret_parts(secret) | secret_parts(secret.removeprefix("whsec_"))
        ),
    )
    logs.hide(service.secrets)
    return service


def verifier_for(settings: Settings, secrets: list[str]) -> signing.Verifier:
    """Webhooks verified by DODO_WEBHOOK_SECRET are live; by DODO_WEBHOOK_TEST_SECRET, or by
    the data dir's secret (made for local trials with `send`, never Dodo's), test."""
    local = [] if settings.secrets else secrets
    return signing.Verifier(settings.secrets, test_secrets=settings.test_secrets + local)


def _check_role(settings: Settings) -> None:
    """Refuse settings with which instances sharing a database would not form one service."""
    shared = is_postgres(settings.database_url)
    if shared and not settings.secrets:
        raise ConfigError(
            "DODO_WEBHOOK_SECRET is not set: with a PostgreSQL database every instance must "
            "verify webhooks with the same secret(s), the one Dodo's dashboard shows for the "
            "endpoint; a secret made up by one instance would fail on the others"
        )
    if settings.role != "all" and not shared:
        raise ConfigError(
            f"DODO_TRANSFORM_ROLE={settings.role} needs a database the instances share: set "
            "DODO_TRANSFORM_DATABASE_URL=postgresql://..., or use the role all"
        )


def _depth(read: Callable[[], int]) -> Callable[[], float]:
    def depth() -> float:
        try:
            return float(read())
        except StorageError:
            return float("nan")  # a scrape must not fail because the store does

    return depth


# --- the processes ----------------------------------------------------------------------------


def serve(settings: Settings) -> None:
    """Run the HTTP process until interrupted."""
    startup.preflight(settings)
    startup.claim_data_dir(settings)
    listener = logs.setup(settings.log_level, settings.log_format)
    file_limit = http_server.raise_file_limit()  # before the worker starts: it inherits it
    service = build_service(settings)
    print(startup.banner(settings, created_secret=service.created_secret), flush=True)
    # uvicorn stops gracefully on SIGTERM (what systemd sends), then raises it again to the
    # handler it found: this one ends the process by returning, so the log is written out,
    # clean-ups run and the exit code is 0. The default action would kill it there: exit code
    # 143 and the last log lines lost.
    signal.signal(signal.SIGTERM, _return_on_sigterm)
    try:
        uvicorn.Server(http_server.config(service.app, settings, file_limit)).run()
    finally:
        listener.stop()


def _return_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


def worker_main(settings: Settings, parent_pid: int, wake: Any) -> None:
    """The worker process's entry point: the pipeline, until stopped or orphaned."""
    # Answering Dodo comes first: when both want the CPU, the kernel favours the HTTP
    # process, and the worker catches up in the gaps (its work is safe in the store).
    os.nice(worker.WORKER_NICENESS)
    malloc.return_big_buffers()  # outcomes of megabytes must not keep the worker that big
    listener = logs.setup(settings.log_level, settings.log_format)
    code = 1
    try:
        asyncio.run(_run_worker(settings, parent_pid, wake))
        code = 0
    finally:
        listener.stop()
        sys.stdout.flush()
        sys.stderr.flush()
        # Its work is stored or released: exit now rather than wait at interpreter exit for
        # a thread that may never return (a store call hung on a dead disk, say).
        os._exit(code)


async def _run_worker(settings: Settings, parent_pid: int, wake: Any) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    service = build_service(settings, in_worker=True, idle_poll_seconds=worker.POLL_SECONDS)
    assert service.pipeline is not None
    await service.start()
    worker.exit_with_parent(parent_pid, partial(loop.call_soon_threadsafe, stop.set))
    pipeline = service.pipeline
    worker.listen_for_wakes(
        wake,
        partial(loop.call_soon_threadsafe, pipeline.notify),
        partial(loop.call_soon_threadsafe, pipeline.notify_events),
    )
    helpers = [
        asyncio.create_task(
            worker.report(service.pipeline, service.pipeline_metrics, settings.data_dir, stop)
        ),
    ]
    log.info("worker started", extra={"pid": os.getpid()})
    await stop.wait()
    await service.stop()
    await asyncio.gather(*helpers, return_exceptions=True)
    log.info("worker stopped")
