"""OpenTelemetry traces of webhooks, exported over OTLP/HTTP when an endpoint is set.

One trace per webhook, across both processes and however long its retries take: its trace id
and the id of its root span (`ingest`) are derived from the webhook id, so the worker's spans
(`transform` for each transform run, `deliver` for each delivery attempt) join the trace
without anything stored or passed along. Every span carries `webhook.id` and
`dodo.event_type`; delivery spans `http.response.status_code` when an answer came.

With no `OTEL_EXPORTER_OTLP_ENDPOINT` (`Settings.otel_endpoint`) there is no provider and
no exporter: each call below returns at its first line. The SDK reads the other standard
variables itself (`OTEL_EXPORTER_OTLP_HEADERS`, `..._TIMEOUT`, `..._COMPRESSION`; the sampler,
`OTEL_TRACES_SAMPLER=parentbased_traceidratio` with `OTEL_TRACES_SAMPLER_ARG=0.1` for one
webhook in ten, decided alike in both processes), and `OTEL_SERVICE_NAME` names the service.
Spans are batched and sent off the pipeline's threads (the SDK's `BatchSpanProcessor`); a
collector that is down costs dropped spans, never a webhook.

The spans are recorded when the work is done, with its start and end times: a round of
transform runs crosses to the sandbox processes at once, so its runs share the round's times.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

# The ids of the span being started, when they are a webhook's (see `_WebhookIds`).
_FORCED: ContextVar[tuple[int, int] | None] = ContextVar("dodo_forced_span_ids", default=None)
SERVICE_NAME = "dodo-transform"


def webhook_ids(webhook_id: str) -> tuple[int, int]:
    """(trace id, root span id) of a webhook: the same in every process, never zero."""
    digest = hashlib.sha256(b"dodo-transform trace\0" + webhook_id.encode()).digest()
    trace_id = int.from_bytes(digest[:16], "big") or 1
    span_id = int.from_bytes(digest[16:24], "big") or 1
    return trace_id, span_id


class Tracing:
    """Records webhooks' spans, or nothing (`enabled` False: no provider was made)."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        self._provider = provider
        self._tracer = None if provider is None else provider.get_tracer("dodo_transform")

    @property
    def enabled(self) -> bool:
        return self._tracer is not None

    def ingested(self, webhook_id: str, event_type: str, started_ns: int) -> None:
        """The root span of a webhook just stored: verified, checked and committed."""
        if self._tracer is None:
            return
        token = _FORCED.set(webhook_ids(webhook_id))
        try:
            span = self._tracer.start_span(
                "ingest",
                start_time=started_ns,
                attributes=_attributes(webhook_id, event_type),
                kind=_server_kind(),
            )
        finally:
            _FORCED.reset(token)
        span.end()

    def transform_ran(
        self,
        webhook_id: str,
        event_type: str,
        transform: str,
        status: str,
        started_ns: int,
        ended_ns: int,
    ) -> None:
        """A transform's run on a webhook's event, and what became of it."""
        if self._tracer is None:
            return
        span = self._tracer.start_span(
            "transform",
            context=self._in_trace_of(webhook_id),
            start_time=started_ns,
            attributes=_attributes(webhook_id, event_type)
            | {"dodo.transform": transform, "dodo.outcome": status},
        )
        span.end(end_time=ended_ns)

    def attempted(
        self,
        webhook_id: str,
        event_type: str,
        extra: Mapping[str, Any],
        started_ns: int,
        ended_ns: int,
    ) -> None:
        """One delivery attempt: `extra` holds `http.response.status_code` when an answer came,
        the transform, the destination (an origin) and the delivery's new status."""
        if self._tracer is None:
            return
        span = self._tracer.start_span(
            "deliver",
            context=self._in_trace_of(webhook_id),
            start_time=started_ns,
            attributes=_attributes(webhook_id, event_type) | dict(extra),
            kind=_client_kind(),
        )
        span.end(end_time=ended_ns)

    def _in_trace_of(self, webhook_id: str) -> Any:
        """A context whose current span is the webhook's `ingest` span (in another process,
        perhaps): spans started in it are its children. Sampled as that span was: the
        sampler (OTEL_TRACES_SAMPLER, e.g. `parentbased_traceidratio`) decides a root by its
        trace id alone, which is the webhook's in every process."""
        from opentelemetry import trace

        assert self._provider is not None
        trace_id, span_id = webhook_ids(webhook_id)
        decision = self._provider.sampler.should_sample(None, trace_id, "ingest")
        sampled = decision.decision.is_sampled()  # type: ignore[no-untyped-call]
        flags = trace.TraceFlags.SAMPLED if sampled else trace.TraceFlags.DEFAULT
        parent = trace.SpanContext(
            trace_id, span_id, is_remote=True, trace_flags=trace.TraceFlags(flags)
        )
        return trace.set_span_in_context(trace.NonRecordingSpan(parent))

    def shutdown(self) -> None:
        """Send what is batched and stop (at the process's end)."""
        if self._provider is not None:
            self._provider.shutdown()


NO_TRACING = Tracing()


def tracing_for(endpoint: str | None) -> Tracing:
    """Tracing that exports to the OTLP/HTTP collector at `endpoint` (its base URL, as
    OTEL_EXPORTER_OTLP_ENDPOINT gives it); none without one. The SDK is imported only then."""
    if not endpoint or os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return NO_TRACING
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # A collector that is down makes the SDK warn at every retry and for every span it drops
    # from a full queue: its errors (a batch given up) are enough for the service's log.
    for name in ("opentelemetry.sdk", "opentelemetry.exporter"):
        logging.getLogger(name).setLevel(logging.ERROR)
    traces = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or (
        endpoint.rstrip("/") + "/v1/traces"
    )
    name = os.environ.get("OTEL_SERVICE_NAME") or SERVICE_NAME
    provider = TracerProvider(
        resource=Resource.create({"service.name": name}), id_generator=_webhook_id_generator()
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces)))
    return Tracing(provider)


@contextmanager
def timed_ns() -> Iterator[list[int]]:
    """[start, end] in Unix nanoseconds around a block, for a span recorded after it."""
    times = [time.time_ns()]
    yield times
    times.append(time.time_ns())


def _attributes(webhook_id: str, event_type: str) -> dict[str, Any]:
    return {"webhook.id": webhook_id, "dodo.event_type": event_type}


def _server_kind() -> Any:
    from opentelemetry.trace import SpanKind

    return SpanKind.SERVER


def _client_kind() -> Any:
    from opentelemetry.trace import SpanKind

    return SpanKind.CLIENT


def _webhook_id_generator() -> Any:
    """The SDK's random ids, except for a webhook's root span, which gets the webhook's."""
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    class WebhookIds(RandomIdGenerator):
        def generate_trace_id(self) -> int:
            forced = _FORCED.get()
            return super().generate_trace_id() if forced is None else forced[0]

        def generate_span_id(self) -> int:
            forced = _FORCED.get()
            return super().generate_span_id() if forced is None else forced[1]

    return WebhookIds()
