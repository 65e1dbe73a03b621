"""Shared fixtures: paths to the shipped examples and a quick way to build events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dodo_transform.transforms.event import Event

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TRANSFORMS = ROOT / "transforms"


def event_from(body: dict[str, Any], webhook_id: str = "msg_test") -> Event:
    return Event.from_body(json.dumps(body), webhook_id=webhook_id)


def sample(event_type: str) -> dict[str, Any]:
    """A shipped example body, as a dict to modify."""
    body: dict[str, Any] = json.loads((EXAMPLES / "events" / f"{event_type}.json").read_text())
    return body


@pytest.fixture
def payment() -> dict[str, Any]:
    return sample("payment.succeeded")
