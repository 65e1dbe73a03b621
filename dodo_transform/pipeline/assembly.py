"""The one place the pipeline is built: from values (`PipelineConfig`), the store, the
registry and the parts a test may replace (the clock, the HTTP transport, the sandboxes).

`PipelineConfig.from_settings` is the only thing here that reads `Settings`; everything below
it takes plain values, so a stage or a test needs no settings object to be made.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from dodo_transform.alerts import Alerter
from dodo_transform.errors import ConfigError
from dodo_transform.metrics import PipelineMetrics
from dodo_transform.outbound.dispatcher import Dispatcher
from dodo_transform.outbound.ratelimit import RateLimiter
from dodo_transform.outbound.retry import MAX_ATTEMPTS
from dodo_transform.outbound.sender import Sender
from dodo_transform.outgoing.destination import DeliveryPolicy
from dodo_transform.pipeline.delivery_settings import DeliverySettings
from dodo_transform.pipeline.delivery_stage import DeliveryStage
from dodo_transform.pipeline.runner import (
    CLAIM_LEASE_SECONDS,
    IDLE_POLL_SECONDS,
    Pipeline,
    Timing,
    in_thread,
)
from dodo_transform.pipeline.transform_stage import TransformStage, run_in_this_process
from dodo_transform.settings import Settings
from dodo_transform.store import FINAL_STATUSES, DeliveryStatus, Store
from dodo_transform.tracing import NO_TRACING, Tracing
from dodo_transform.transforms.quarantine import Quarantine
from dodo_transform.transforms.registry import Registry
from dodo_transform.transforms.sandbox_processes import SandboxPool


def retention_by_status(days: Mapping[str, int]) -> dict[DeliveryStatus, int]:
    """DODO_TRANSFORM_RETENTION_BY_STATUS's statuses, checked: a final one each."""
    known = {status.value: status for status in FINAL_STATUSES | {DeliveryStatus.FAILED}}
    unknown = sorted(set(days) - set(known))
    if unknown:
        raise ConfigError(
            f"DODO_TRANSFORM_RETENTION_BY_STATUS: {', '.join(unknown)} is not a status a"
            f" delivery settles in; use {', '.join(sorted(known))}"
        )
    return {known[status]: n for status, n in days.items()}


@dataclass(frozen=True)
class PipelineConfig:
    """Everything the pipeline is built from that the settings give."""

    timing: Timing
    transform_threads: int
    segment_base_url: str
    allowed_hosts: frozenset[str]
    segment_batch_size: int
    retry_base_seconds: float
    dry_run: bool
    default_write_key: str | None
    default_policy: DeliveryPolicy
    service_secrets: frozenset[str]  # what requests may carry of the service's own secrets
    alert_url: str | None

    @classmethod
    def from_settings(
        cls, settings: Settings, idle_poll_seconds: float = IDLE_POLL_SECONDS
    ) -> PipelineConfig:
        key = settings.segment_write_key
        alert = settings.alert_url
        return cls(
            timing=Timing(
                step_limit_seconds=settings.lease_seconds,
                claim_lease_seconds=min(settings.lease_seconds, CLAIM_LEASE_SECONDS),
                idle_poll_seconds=idle_poll_seconds,
                retention_days=settings.retention_days,
                retention_by_status=retention_by_status(settings.retention_by_status),
                segment_requests_per_second=settings.segment_requests_per_second,
                bulk_replay_per_second=settings.bulk_replay_per_second,
            ),
            transform_threads=settings.transform_threads,
            segment_base_url=settings.segment_base_url,
            allowed_hosts=settings.extra_allowed_hosts,
            segment_batch_size=settings.segment_batch_size,
            retry_base_seconds=settings.retry_base_seconds,
            dry_run=settings.dry_run,
            default_write_key=key.get_secret_value() if key is not None else None,
            default_policy=DeliveryPolicy(
                timeout=settings.delivery_timeout,
                max_attempts=MAX_ATTEMPTS,
                concurrency=settings.delivery_concurrency,
            ),
            service_secrets=settings.secret_values(),
            alert_url=alert.get_secret_value() if alert is not None else None,
        )


def build_pipeline(
    config: PipelineConfig,
    *,
    store: Store,
    registry: Registry,
    metrics: PipelineMetrics,
    clock: Callable[[], float] = time.time,
    transport: httpx.AsyncBaseTransport | None = None,
    sandboxed: bool = True,
    tracing: Tracing = NO_TRACING,
) -> Pipeline:
    """The pipeline, every part of it made and wired here. Handlers run in
    `config.transform_threads` sandbox processes; not `sandboxed`, on this process's threads,
    with no backstop for a built-in call that runs on (tests)."""
    settings = DeliverySettings(
        registry,
        default_write_key=config.default_write_key,
        default_policy=config.default_policy,
        service_secrets=config.service_secrets,
    )
    dispatcher = _dispatcher(config, settings, clock, transport)
    limiter = dispatcher.limiter
    quarantine = Quarantine()  # the one count the stage, the sandboxes and the backstop keep
    sandboxes = SandboxPool(config.transform_threads, quarantine) if sandboxed else None
    run_all = sandboxes.run_pairs if sandboxes is not None else run_in_this_process
    executor = ThreadPoolExecutor(config.transform_threads, "transform")
    alerts = _alerter(config, registry, metrics, transport)
    due = asyncio.Event()  # new deliveries to claim, or a lane with room again
    lease = config.timing.claim_lease_seconds
    delivering = DeliveryStage(
        store=store,
        dispatcher=dispatcher,
        metrics=metrics,
        store_call=in_thread,
        lease_seconds=lease,
        batch_size=config.segment_batch_size,
        policy_for=settings.policy_for,
        wake=due.set,
        clock=clock,
        alerts=alerts,
        tracing=tracing,
    )
    transforming = TransformStage(
        store=store,
        registry=registry,
        metrics=metrics,
        executor=executor,
        store_call=in_thread,
        lease_seconds=lease,
        run_all=run_all,
        alerts=alerts,
        quarantine=quarantine,
        receiver=delivering,  # each round's new deliveries go straight to their lanes
        clock=clock,
        tracing=tracing,
    )
    return Pipeline(
        store=store,
        registry=registry,
        transforming=transforming,
        delivering=delivering,
        limiter=limiter,
        executor=executor,
        run_all=run_all,
        sandboxes=sandboxes,
        alerts=alerts,
        timing=config.timing,
        due=due,
        clock=clock,
    )


def _dispatcher(
    config: PipelineConfig,
    settings: DeliverySettings,
    clock: Callable[[], float],
    transport: httpx.AsyncBaseTransport | None,
) -> Dispatcher:
    sender = Sender(
        segment_base_url=config.segment_base_url,
        allowed_hosts=config.allowed_hosts,
        timeout=config.default_policy.timeout,
        transport=transport,
    )
    return Dispatcher(
        sender,
        write_key_for=settings.write_key_for,
        configured_for=settings.configured_for,
        # Shared by every Segment lane: Segment limits a workspace, not a lane (and the
        # instances running a pipeline share its rate: see Pipeline).
        limiter=RateLimiter(config.timing.segment_requests_per_second),
        dry_run=config.dry_run,
        retry_base_seconds=config.retry_base_seconds,
        batch_size=config.segment_batch_size,
        clock=clock,
    )


def _alerter(
    config: PipelineConfig,
    registry: Registry,
    metrics: PipelineMetrics,
    transport: httpx.AsyncBaseTransport | None,
) -> Alerter | None:
    if config.alert_url is None:
        return None
    return Alerter(
        config.alert_url,
        registry=metrics.registry,
        transport=transport,
        secrets=lambda: config.service_secrets | registry.secret_values(),
    )
