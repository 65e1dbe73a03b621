"""Prometheus metrics, on registries of our own so that each app instance counts for itself.

Two families, one per process that owns them: `IngestMetrics` in the HTTP
process, `PipelineMetrics` where the pipeline runs (the worker process, by
default). `/metrics` shows both. Labels carry transform names, outcomes,
reasons and destinations (an origin, never a path): never secrets, write keys or ids.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client import Counter as _PrometheusCounter

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Counter(_PrometheusCounter):
    """prometheus-client's Counter, its labelled children looked up once per label values:
    `labels()` takes a lock and checks its arguments every time, and the pipeline counts
    every outcome and every message (a few per event, thousands a second in a burst)."""

    def labels(self, *values: Any, **by_name: Any) -> Any:
        if by_name:
            return super().labels(*values, **by_name)
        cache: dict[tuple[Any, ...], Any] = self.__dict__.setdefault("_children_by_values", {})
        child = cache.get(values)
        if child is None:
            child = cache[values] = super().labels(*values)
        return child


class IngestMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.received = Counter(
            "dodo_webhooks_received", "Webhooks stored (new events).", registry=self.registry
        )
        self.duplicates = Counter(
            "dodo_webhooks_duplicate",
            "Redelivered webhook-ids answered 2xx.",
            registry=self.registry,
        )
        self.rejected = Counter(
            "dodo_webhooks_rejected",
            "Webhooks refused, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.queue = Gauge(
            "dodo_queue_depth", "Work waiting, by kind.", ["kind"], registry=self.registry
        )

    def watch_queue(self, kind: str, depth: Callable[[], float]) -> None:
        """Read a queue's depth at scrape time."""
        self.queue.labels(kind).set_function(depth)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class PipelineMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.outcomes = Counter(
            "dodo_transform_outcomes",
            "Transform outcomes.",
            ["transform", "outcome"],
            registry=self.registry,
        )
        self.delivered = Counter(
            "dodo_deliveries_delivered",
            "Requests answered 2xx.",
            ["transform"],
            registry=self.registry,
        )
        self.retried = Counter(
            "dodo_deliveries_retried",
            "Failed attempts that will be retried.",
            ["transform"],
            registry=self.registry,
        )
        self.finished = Counter(
            "dodo_deliveries_finished",
            "Deliveries that ended other than delivered, by status.",
            ["transform", "status"],
            registry=self.registry,
        )
        self.quarantined = Gauge(
            "dodo_transform_quarantined",
            "1 while the transform's current version is quarantined (hit its limits).",
            ["transform"],
            registry=self.registry,
        )
        self.paused = Gauge(
            "dodo_destination_paused",
            "1 while the transform's requests to the destination (an origin) are paused by its"
            " circuit breaker (it keeps failing).",
            ["transform", "destination"],
            registry=self.registry,
        )
        self.stage_seconds = Counter(
            "dodo_pipeline_stage_seconds",
            "Seconds the pipeline spent in each part of its work (where the time goes).",
            ["stage"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "dodo_delivery_latency_seconds",
            "From webhook received to delivered.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86400),
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Count the time the block takes as `stage`'s."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.stage_seconds.labels(stage).inc(time.perf_counter() - started)
