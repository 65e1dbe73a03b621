"""Tracing (tracing.py): with an OTLP endpoint set, one trace per webhook reaches a local
OTLP/HTTP receiver with its ingest, transform and delivery spans; unset, nothing is made."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from dodo_transform import tracing
from dodo_transform.testing import (
    InProcessServer,
    OtlpReceiver,
    ReceivedSpan,
    SegmentStandIn,
    Server,
    server_env,
    server_settings,
)
from tests.conftest import sample, shipped_transforms

WEBHOOKS = ["msg_trace_1", "msg_trace_2", "msg_trace_3"]


def test_each_webhook_is_one_trace_with_its_ingest_transform_and_delivery_spans(
    tmp_path: Path,
) -> None:
    shipped_transforms(tmp_path / "transforms")
    with (
        OtlpReceiver().running() as receiver,
        SegmentStandIn().running() as standin,
    ):
        settings = server_settings(standin, otel_endpoint=receiver.url)
        server = InProcessServer(tmp_path, **settings).start()
        try:
            for webhook_id in WEBHOOKS:
                assert server.post(sample("payment.succeeded"), webhook_id=webhook_id).is_success
            server.wait_idle()
        finally:
            server.stop()  # sends what is batched
        spans = receiver.spans()
    traces: dict[str, list[ReceivedSpan]] = defaultdict(list)
    for span in spans:
        traces[span.trace_id].append(span)
    assert len(traces) == len(WEBHOOKS)
    for trace in traces.values():
        (webhook_id,) = {span.attributes["webhook.id"] for span in trace}
        assert webhook_id in WEBHOOKS
        assert {span.attributes["dodo.event_type"] for span in trace} == {"payment.succeeded"}
        (ingest,) = [span for span in trace if span.name == "ingest"]
        assert ingest.parent_span_id == ""  # the root
        assert ingest.trace_id == f"{tracing.webhook_ids(webhook_id)[0]:032x}"
        transforms = [span for span in trace if span.name == "transform"]
        assert len(transforms) == 3  # each shipped transform ran on it
        deliveries = [span for span in trace if span.name == "deliver"]
        assert len(deliveries) == 2  # track and identify; the lifecycle one skips
        assert {span.attributes["http.response.status_code"] for span in deliveries} == {200}
        assert all(span.parent_span_id == ingest.span_id for span in transforms + deliveries)
        assert all(span.start_ns <= span.end_ns for span in trace)


def test_without_an_endpoint_nothing_is_traced() -> None:
    unset = tracing.tracing_for(None)
    assert unset is tracing.NO_TRACING and not unset.enabled
    unset.ingested("msg_1", "payment.succeeded", 0)  # costs a check, makes nothing


def test_a_webhooks_trace_id_is_the_same_everywhere_and_never_zero() -> None:
    assert tracing.webhook_ids("msg_1") == tracing.webhook_ids("msg_1")
    assert tracing.webhook_ids("msg_1") != tracing.webhook_ids("msg_2")
    assert all(part != 0 for part in tracing.webhook_ids("msg_1"))


def test_the_worker_processs_spans_join_the_http_processs_trace(tmp_path: Path) -> None:
    """`serve` itself: ingest is traced in the HTTP process, the transform runs and delivery
    attempts in the worker process, and they are one trace per webhook all the same."""
    shipped_transforms(tmp_path / "transforms")
    with (
        OtlpReceiver().running() as receiver,
        SegmentStandIn().running() as standin,
    ):
        env = server_env(
            standin, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url, OTEL_BSP_SCHEDULE_DELAY="100"
        )
        server = Server(tmp_path, env).start()
        try:
            assert server.worker_pid() is not None
            assert server.post(
                sample("payment.succeeded"), webhook_id="msg_two_processes"
            ).is_success
            server.wait_idle()
            spans = receiver.wait_for(1 + 3 + 2)  # ingest, three transforms, two deliveries
        finally:
            server.stop()
    assert {span.trace_id for span in spans} == {
        f"{tracing.webhook_ids('msg_two_processes')[0]:032x}"
    }
    (ingest,) = [span for span in spans if span.name == "ingest"]
    assert all(span.parent_span_id == ingest.span_id for span in spans if span is not ingest)


def test_a_sampled_webhook_is_traced_whole_and_an_unsampled_one_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With OTEL_TRACES_SAMPLER=parentbased_traceidratio the decision is the trace id's, the
    webhook's: a webhook's trace is whole or absent, never its worker spans alone."""
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.5")
    shipped_transforms(tmp_path / "transforms")
    webhooks = [f"msg_sampled_{n}" for n in range(12)]
    with (
        OtlpReceiver().running() as receiver,
        SegmentStandIn().running() as standin,
    ):
        server = InProcessServer(tmp_path, **server_settings(standin, otel_endpoint=receiver.url))
        server.start()
        try:
            for webhook_id in webhooks:
                assert server.post(sample("payment.succeeded"), webhook_id=webhook_id).is_success
            server.wait_idle()
        finally:
            server.stop()
        spans = receiver.spans()
    traces: dict[str, list[ReceivedSpan]] = defaultdict(list)
    for span in spans:
        traces[span.trace_id].append(span)
    assert 0 < len(traces) < len(webhooks)
    for trace in traces.values():
        assert (
            sorted(span.name for span in trace) == ["deliver"] * 2 + ["ingest"] + ["transform"] * 3
        )
