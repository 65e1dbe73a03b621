"""The running service: its long-lived parts, built from the settings, started and stopped in order.

Start: open the store, load the transforms, start the pipeline (by default in
its own worker process, see worker.py), watch the folder.
Stop: stop watching, stop the pipeline (in-flight work finishes or is released),
commit what the intake holds, close the store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import uvicorn

from dodo_transform import logs, signing
from dodo_transform.errors import ConfigError, StorageError
from dodo_transform.metrics import IngestMetrics, PipelineMetrics
from dodo_transform.pipeline.runner import Pipeline
from dodo_transform.pipeline.worker import WorkerProcess
from dodo_transform.settings import Settings
from dodo_transform.store.intake import Intake
from dodo_transform.store.sqlite import SqliteStore, Store
from dodo_transform.transforms.registry import Registry
from dodo_transform.transforms.reload import Watcher, reload_on_change, watch_folder
from dodo_transform.web.app import create_app

log = logging.getLogger("dodo_transform.service")
SECRET_FILE = "webhook-secret"
WEBHOOK_PATH = "/webhooks/dodo"


def stored_secret(data_dir: Path, *, create: bool) -> tuple[str | None, bool]:
    """The secret kept in the data dir, made on first use when `create`; (secret, created)."""
    path = data_dir / SECRET_FILE
    if path.is_file():
        return path.read_text().strip(), False
    if not create:
        return None, False
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = signing.new_secret()
    path.touch(mode=0o600)
    path.write_text(secret + "\n")
    return secret, True


def signing_secrets(settings: Settings, *, create: bool) -> tuple[list[str], bool]:
    """The configured secrets, else the data dir's (made on first run); (secrets, created)."""
    if settings.secrets:
        return settings.secrets, False
    secret, created = stored_secret(settings.data_dir, create=create)
    if secret is None:
        raise ConfigError(
            f"no webhook secret: set DODO_WEBHOOK_SECRET or run `serve` once to create "
            f"{settings.data_dir / SECRET_FILE}"
        )
    return [secret], created


class Service:
    """The HTTP side (ingest, health, metrics, admin API) and the pipeline, in-process or not."""

    def __init__(self, settings: Settings, *, watch: Watcher = watch_folder) -> None:
        self.settings = settings
        secrets, self.created_secret = signing_secrets(settings, create=True)
        self.verifier = signing.Verifier(secrets)
        self.metrics = IngestMetrics()
        self.store: Store = SqliteStore(settings.database, claims_work=not settings.worker_process)
        self.intake = Intake(self.store)
        self.registry = Registry(settings.transforms, settings.limits)
        self.worker: WorkerProcess | None = None
        self.pipeline: Pipeline | None = None
        self.pipeline_metrics = PipelineMetrics()  # used when the pipeline runs in this process
        if settings.worker_process:
            self.worker = WorkerProcess(settings)
        else:
            self.pipeline = Pipeline.from_settings(
                settings, self.store, self.registry, self.pipeline_metrics
            )
        self.loaded = False
        self._watch = watch
        self._stopping = asyncio.Event()
        self._helpers: list[asyncio.Task[None]] = []
        self.metrics.watch_queue("events", self._depth(self.store.pending_events))
        self.metrics.watch_queue(
            "deliveries", self._depth(lambda: self.store.counts().get("pending", 0))
        )
        self.app = create_app(self)

    @staticmethod
    def _depth(read: Callable[[], int]) -> Callable[[], float]:
        def depth() -> float:
            try:
                return float(read())
            except StorageError:
                return float("nan")  # a scrape must not fail because the store does

        return depth

    @property
    def pipeline_running(self) -> bool:
        return self.worker.alive if self.worker is not None else self.pipeline is not None

    def notify(self) -> None:
        """An event was stored. The in-process pipeline starts on it now; a worker polls."""
        if self.pipeline is not None:
            self.pipeline.notify()

    def render_metrics(self) -> bytes:
        pipeline = (
            self.worker.metrics_text()
            if self.worker is not None
            else self.pipeline_metrics.render()
        )
        return self.metrics.render() + pipeline

    async def start(self) -> None:
        if not self.settings.transforms.is_dir():
            raise ConfigError(f"transforms folder {self.settings.transforms} does not exist")
        await asyncio.to_thread(self.registry.reload)  # for the admin API and replays
        self.loaded = True
        self._stopping = asyncio.Event()
        if self.worker is not None:
            self.worker.start()
            self._helpers.append(asyncio.create_task(self.worker.supervise(self._stopping)))
        if self.pipeline is not None:
            await self.pipeline.start()
        self._helpers.append(
            asyncio.create_task(
                reload_on_change(self.registry, self._stopping, self._watch), name="reload"
            )
        )

    async def stop(self) -> None:
        self._stopping.set()
        for task in self._helpers:
            task.cancel()
        await asyncio.gather(*self._helpers, return_exceptions=True)
        if self.worker is not None:
            await asyncio.to_thread(self.worker.stop)
        if self.pipeline is not None:
            await self.pipeline.stop()
        await asyncio.to_thread(self.intake.close)
        self.store.close()


def banner(service: Service) -> str:
    settings = service.settings
    url = f"http://{settings.host}:{settings.port}{WEBHOOK_PATH}"
    mode = (
        "DRY RUN: no SEGMENT_WRITE_KEY, requests are recorded, not sent"
        if settings.dry_run
        else f"LIVE: delivering to {settings.segment_base_url}"
    )
    lines = [
        "dodo-transform is running",
        f"  mode:       {mode}",
        f"  webhook URL to give Dodo: {url}",
        f"  transforms: {settings.transforms.resolve()}",
        f"  data:       {settings.data_dir.resolve()}",
    ]
    if service.created_secret:
        secret = (settings.data_dir / SECRET_FILE).read_text().strip()
        lines.append(f"  new signing secret (kept in {settings.data_dir / SECRET_FILE}): {secret}")
    elif not settings.secrets:
        lines.append(f"  signing secret: kept in {settings.data_dir / SECRET_FILE}")
    lines.append("  try it: dodo-transform send examples/events/payment.succeeded.json")
    return "\n".join(lines)


def serve(settings: Settings) -> None:
    """Run the service until interrupted."""
    listener = logs.setup()
    service = Service(settings)
    print(banner(service), flush=True)
    config = uvicorn.Config(
        service.app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=10,
        access_log=False,
    )
    try:
        uvicorn.Server(config).run()
    finally:
        listener.stop()
