"""Pipeline pieces that need no running loop: what is stored per outcome, write keys, replay."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dodo_transform.pipeline.outcomes import outcome_deliveries, write_key_for
from dodo_transform.pipeline.replay import ReplayError, replay
from dodo_transform.settings import load_settings
from dodo_transform.store import NewDelivery, NewEvent
from dodo_transform.store.sqlite import SqliteStore
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
    settings = load_settings(segment_write_key="wk_default")
    assert write_key_for(settings, registry, "own") == "wk_own"
    assert write_key_for(settings, registry, "shared") == "wk_default"


def test_replay_reruns_the_current_version_on_the_stored_event(
    tmp_path: Path, payment: dict[str, Any]
) -> None:
    store = SqliteStore(tmp_path / "db.sqlite")
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
