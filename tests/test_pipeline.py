"""Pipeline pieces that need no running loop: what is stored per outcome, write keys, replay."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from dodo_transform.errors import StorageError
from dodo_transform.limits import Limits
from dodo_transform.metrics import PipelineMetrics
from dodo_transform.pipeline import replay as replay_module
from dodo_transform.pipeline import transform_stage
from dodo_transform.pipeline.delivery_settings import DeliverySettings
from dodo_transform.pipeline.outcomes import outcome_deliveries
from dodo_transform.pipeline.replay import ReplayError, replay, run_requested
from dodo_transform.pipeline.transform_stage import TransformStage
from dodo_transform.pipeline.versions import VersionRecorder
from dodo_transform.store import DeliveryStatus, NewDelivery, NewEvent
from dodo_transform.store.sqlite import MemoryStore
from dodo_transform.transforms.engine import Transform
from dodo_transform.transforms.registry import Registry
from tests.conftest import event_from


def run(source: str, body: dict[str, Any]) -> list[NewDelivery]:
    transform = Transform(name="t", source=source, filename="t.js")
    return outcome_deliveries(transform, transform.run(event_from(body)))


def test_each_outcome_becomes_stored_deliveries(payment: dict[str, Any]) -> None:
    track = (
        "function handler(w) { w.url = 'https://api.segment.io/v1/track';"
        " w.payload = {userId: 'u', event: 'Payment Completed'}; return w; }"
    )
    (pending,) = run(track, payment)
    assert pending.request is not None
    assert (pending.status, pending.request.url) == ("pending", "https://api.segment.io/v1/track")
    (invalid,) = run(track.replace("userId: 'u', ", ""), payment)
    assert invalid.status == "invalid" and "neither userId nor anonymousId" in (invalid.error or "")
    assert [d.status for d in run("function handler(w) { return w; }", payment)] == ["skipped"]
    (failed,) = run("function handler(w) { throw new Error('x'); }", payment)
    assert failed.status == "failed" and "Error: x" in (failed.error or "")


def test_write_key_comes_from_transforms_toml_or_the_default(tmp_path: Path) -> None:
    (tmp_path / "own.js").write_text("function handler(w) { return w; }")
    (tmp_path / "shared.js").write_text("function handler(w) { return w; }")
    (tmp_path / "transforms.toml").write_text('[own]\nwrite_key = "wk_own"\n')
    registry = Registry(tmp_path)
    registry.reload()
    settings = DeliverySettings(registry, default_write_key="wk_default")
    assert settings.write_key_for("own") == "wk_own"
    assert settings.write_key_for("shared") == "wk_default"


def test_delivery_settings_follow_a_reload_of_transforms_toml(tmp_path: Path) -> None:
    # Worked out once per table, but a changed table is a new one: the next send sees it.
    (tmp_path / "own.js").write_text("function handler(w) { return w; }")
    (tmp_path / "transforms.toml").write_text(
        '[own]\nurl = "https://a.example.com/x"\ntimeout = 5\nwrite_key = "wk_first_0001"\n'
    )
    registry = Registry(tmp_path)
    registry.reload()
    settings = DeliverySettings(registry, service_secrets=frozenset({"svc_secret"}))
    assert settings.configured_for("own").url == "https://a.example.com/x"
    assert settings.policy_for("own").timeout == 5
    assert {"wk_first_0001", "svc_secret"} <= settings.configured_for("own").secrets
    (tmp_path / "transforms.toml").write_text(
        '[own]\nurl = "https://b.example.com/y"\ntimeout = 7\nwrite_key = "wk_second_0002"\n'
    )
    registry.reload()
    assert settings.configured_for("own").url == "https://b.example.com/y"
    assert settings.policy_for("own").timeout == 7
    assert settings.write_key_for("own") == "wk_second_0002"
    assert "wk_second_0002" in settings.configured_for("own").secrets


def test_replay_reruns_the_current_version_on_the_stored_event(
    tmp_path: Path, payment: dict[str, Any]
) -> None:
    store = MemoryStore()
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "t.js").write_text("function handler(w) { throw new Error('broken'); }")
    registry = Registry(folder)
    registry.reload()
    ((event_id, _),) = store.add_events(
        [NewEvent("msg_1", "payment.succeeded", json.dumps(payment).encode())]
    )
    broken = registry.current()["t"]
    store.record_outcomes({event_id: outcome_deliveries(broken, broken.run(event_from(payment)))})
    (failed,) = store.list_deliveries(status="failed")
    with pytest.raises(ReplayError, match="no delivery"):
        replay(store, registry, failed.id + 100)
    (folder / "t.js").write_text(
        "function handler(w) { w.url = 'https://api.segment.io/v1/track';"
        " w.payload = {userId: 'u', event: 'Payment Completed'}; return w; }"
    )
    registry.reload()
    (result,) = replay(store, registry, failed.id)
    assert result.status == "pending"
    assert [d.status for d in store.list_deliveries(event_id=event_id)] == ["pending", "replayed"]
    with pytest.raises(ReplayError, match="only failed or dead"):
        replay(store, registry, failed.id)
    store.close()


TRACK = (
    "function handler(w) { w.url = 'https://api.segment.io/v1/track';"
    " w.payload = {userId: 'u', event: 'Payment Completed'}; return w; }"
)
DEEP = (
    "function handler(w) { let p = {}; for (let i = 0; i < 2000; i++) p = {p};"
    " w.url = 'https://api.segment.io/v1/track'; w.payload = p; return w; }"
)


def stage_over(
    tmp_path: Path,
    sources: dict[str, str],
    toml: str = "",
    store_call: Callable[..., Any] | None = None,
) -> tuple[TransformStage, MemoryStore]:
    folder = tmp_path / "transforms"
    folder.mkdir()
    for name, source in sources.items():
        (folder / f"{name}.js").write_text(source)
    (folder / "transforms.toml").write_text(toml)
    registry = Registry(folder)
    registry.reload()
    store = MemoryStore()

    async def direct(method: Callable[..., Any], *args: Any) -> Any:
        return method(*args)

    stage = TransformStage(
        store=store,
        registry=registry,
        metrics=PipelineMetrics(),
        executor=ThreadPoolExecutor(2),
        store_call=store_call or direct,
        lease_seconds=30,
    )
    return stage, store


def add_events(store: MemoryStore, *bodies: bytes) -> None:
    store.add_events([NewEvent(f"msg_{n}", "payment.succeeded", b) for n, b in enumerate(bodies)])


def test_a_transform_runs_only_on_the_event_types_its_events_name(tmp_path: Path) -> None:
    """As a Dodo endpoint is sent only the types it subscribes to: nothing is stored for the
    others, not even a skipped outcome, and a transform without `events` gets every type."""
    stage, store = stage_over(
        tmp_path,
        {"payments": TRACK, "subscriptions": TRACK, "everything": TRACK},
        '[payments]\nevents = ["payment.succeeded", "refund.*"]\n'
        '[subscriptions]\nevents = ["subscription.*"]\n',
    )
    types = ["payment.succeeded", "payment.failed", "refund.failed", "subscription.active"]
    store.add_events([NewEvent(f"msg_{t}", t, json.dumps({"type": t}).encode()) for t in types])
    assert asyncio.run(stage.step()) is True
    assert store.pending_events() == 0
    received = sorted((d.transform, d.event_type) for d in store.list_deliveries())
    assert received == sorted(
        [("everything", t) for t in types]
        + [("payments", "payment.succeeded"), ("payments", "refund.failed")]
        + [("subscriptions", "subscription.active")]
    )
    store.close()


def test_the_sandbox_runs_a_round_while_the_round_before_it_is_stored(
    tmp_path: Path, payment: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Round 1's commit waits for round 2 to reach the sandbox: run one after the other, it
    # would wait in vain (and find it not started).
    monkeypatch.setattr(transform_stage, "EVENTS_PER_ROUND", 2)
    second_round = threading.Event()
    overlapped: list[bool] = []

    async def store_call(method: Callable[..., Any], *args: Any) -> Any:
        if getattr(method, "__name__", "") == "record_outcomes":
            overlapped.append(await asyncio.to_thread(second_round.wait, 5))
        return method(*args)

    stage, store = stage_over(tmp_path, {"track": TRACK}, store_call=store_call)
    transform = stage.transform
    rounds: list[int] = []

    def counted(chunk: Any, enabled: Any) -> Any:
        rounds.append(len(chunk))
        if len(rounds) == 2:
            second_round.set()
        return transform(chunk, enabled)

    stage.transform = counted  # type: ignore[method-assign]
    body = json.dumps(payment).encode()
    add_events(store, body, body, body, body)
    assert asyncio.run(stage.step()) is True
    assert rounds == [2, 2]
    assert overlapped == [True, True]
    assert store.pending_events() == 0 and len(store.list_deliveries()) == 4
    store.close()


BIG = (
    "function handler(webhook) { webhook.url = 'https://api.segment.io/v1/track';"
    " webhook.payload = { userId: 'u', event: 'Big Thing', blob: 'x'.repeat(300000) };"
    " return webhook; }"
)


def test_a_round_ends_once_its_outcomes_hold_its_bytes_the_rest_go_next(
    tmp_path: Path, payment: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Handlers returning big payloads: a round holds at most about ROUND_OUTCOME_BYTES of
    them (its events run a slice at a time), and the events it did not reach are transformed
    in the next rounds of the same claim, none lost or run twice."""
    monkeypatch.setattr(transform_stage, "ROUND_OUTCOME_BYTES", 1_000_000)
    stage, store = stage_over(tmp_path, {"big": BIG})
    ran: list[int] = []
    run_all = stage._run_all

    def counted(pairs: Any) -> Any:
        ran.append(len(pairs))
        return run_all(pairs)

    stage._run_all = counted  # type: ignore[method-assign]
    body = json.dumps(payment).encode()
    add_events(store, *[body] * 10)
    assert asyncio.run(stage.step()) is True
    # First slice: FIRST_SLICE_EVENTS at most, as nothing is known yet; then about 1 MB of
    # ~300 KB outcomes a slice (3 events), never more than the bytes allow.
    assert ran[0] == min(10, transform_stage.FIRST_SLICE_EVENTS)
    assert all(count <= 3 for count in ran[1:]) and sum(ran) == 10
    assert store.pending_events() == 0
    assert len(store.list_deliveries()) == 10
    store.close()


def test_an_event_a_handler_cannot_return_fails_that_handler_only_not_the_batch(
    tmp_path: Path, payment: dict[str, Any]
) -> None:
    """A payload nested 2,000 deep raised RecursionError from the run, and the whole batch of
    events was claimed and failed again and again."""
    stage, store = stage_over(tmp_path, {"deep": DEEP, "track": TRACK})
    body = json.dumps(payment).encode()
    add_events(store, body, body)
    assert asyncio.run(stage.step()) is True
    assert store.pending_events() == 0
    deliveries = store.list_deliveries()
    assert sorted((d.transform, d.status) for d in deliveries) == [
        ("deep", "failed"),
        ("deep", "failed"),
        ("track", "pending"),
        ("track", "pending"),
    ]
    assert all(
        "deep.js: the returned webhook is nested too deeply" in (d.error or "")
        for d in deliveries
        if d.transform == "deep"
    )
    store.close()


def test_an_exception_around_one_transform_is_its_failed_delivery(
    tmp_path: Path, payment: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    stage, store = stage_over(tmp_path, {"a": TRACK, "b": TRACK})
    real = transform_stage.outcome_deliveries

    def breaks_for_a(transform: Transform, outcome: Any) -> list[NewDelivery]:
        if transform.name == "a":
            raise KeyError("boom")
        return real(transform, outcome)

    monkeypatch.setattr(transform_stage, "outcome_deliveries", breaks_for_a)
    add_events(store, json.dumps(payment).encode(), b"\xff not UTF-8")
    assert asyncio.run(stage.step()) is True
    assert store.pending_events() == 0
    by_event = {
        (d.webhook_id, d.transform): (d.status, d.error or "") for d in store.list_deliveries()
    }
    assert by_event[("msg_0", "b")] == ("pending", "")
    status, error = by_event[("msg_0", "a")]
    assert status == "failed" and error.endswith("could not transform this event: KeyError: 'boom'")
    for name in ("a", "b"):
        status, error = by_event[("msg_1", name)]
        assert status == "failed" and "the stored event body is not UTF-8 text" in error
    store.close()


def test_a_replay_that_fails_unexpectedly_is_finished_with_the_reason(
    tmp_path: Path, payment: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    stage, store = stage_over(tmp_path, {"t": "function handler(w) { throw new Error('x'); }"})
    add_events(store, json.dumps(payment).encode())
    asyncio.run(stage.step())
    (failed,) = store.list_deliveries(status=DeliveryStatus.FAILED)
    store.request_replays([failed.id])

    def broken(*args: Any) -> Any:
        raise ValueError("unexpected")

    monkeypatch.setattr(replay_module, "outcome_deliveries", broken)
    run_requested(store, stage.registry, failed.id)
    done = store.get_replay(failed.id)
    assert done is not None and done.done_at is not None
    assert done.error == "the replay failed: ValueError: unexpected"
    store.close()


def test_quarantine_within_a_batch_keeps_each_outcome_with_its_own_transform(
    tmp_path: Path, payment: dict[str, Any]
) -> None:
    """Recording the third limit hit quarantines the version mid-batch; the outcomes already
    run for the rest of the batch must still go to their own transforms."""
    stage, store = stage_over(
        tmp_path, {"loop": "function handler(w) { while (true) {} }", "track": TRACK}
    )
    limits = Limits(time_seconds=0.05)
    for transform in stage.registry.current().values():
        object.__setattr__(transform, "limits", limits)  # a short limit keeps this test quick
        transform.__post_init__()
    add_events(store, *[json.dumps(payment).encode()] * 5)
    assert asyncio.run(stage.step()) is True
    by_transform: dict[str, list[DeliveryStatus]] = {}
    for delivery in store.list_deliveries():
        by_transform.setdefault(delivery.transform, []).append(delivery.status)
    assert by_transform["track"] == [DeliveryStatus.PENDING] * 5
    assert by_transform["loop"] == [DeliveryStatus.FAILED] * 5
    store.close()


def test_the_versions_in_service_are_recorded_once_and_retried_after_a_store_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "transforms"
    folder.mkdir()
    (folder / "t.js").write_text("function handler(w) { return w; }\n")
    (folder / "broken.js").write_text("function handler(w) {\n")
    registry = Registry(folder)
    registry.reload()
    store = MemoryStore()
    recorder = VersionRecorder(store, registry)
    real = store.record_versions

    def failing(versions: Any) -> int:
        raise StorageError("disk full")

    monkeypatch.setattr(store, "record_versions", failing)
    with pytest.raises(StorageError):
        recorder.record_new()
    monkeypatch.setattr(store, "record_versions", real)
    assert recorder.record_new() == 1  # never loaded, never in service: not a version
    assert recorder.record_new() == 0
    (kept,) = store.list_versions("t")
    assert kept.version == registry.current()["t"].version
    assert kept.source == "function handler(w) { return w; }\n"
    (folder / "t.js").write_text("function handler(w) { return null; }\n")
    registry.reload()
    assert recorder.record_new() == 1
    assert [v.version for v in store.list_versions("t")] == [
        registry.current()["t"].version,
        kept.version,
    ]
    # Another process (or a restart) recording the same versions adds nothing.
    assert VersionRecorder(store, registry).record_new() == 0
    assert store.list_versions("broken") == []
    store.close()
