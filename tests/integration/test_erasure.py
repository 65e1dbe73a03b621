"""Erasing a customer through the real server: after `erase`, their email is found nowhere in
the database's files or the API, and everyone else's events are as they were."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from dodo_transform.testing import InProcessServer, SegmentStandIn, server_settings
from tests.command_line import run
from tests.integration.conftest import example
from tests.postgres import fresh_database

EMAIL = "erase.me@example.com"


def of(customer: str, email: str | None, event_type: str = "payment.succeeded") -> dict[str, Any]:
    body = example(event_type)
    body["data"]["customer"] = {"customer_id": customer, "email": email, "name": "Erin Rasmus"}
    return body


@pytest.fixture(params=["sqlite", "postgres"])
def served(
    request: pytest.FixtureRequest, workdir: Path, standin: SegmentStandIn
) -> Iterator[InProcessServer]:
    """A server holding two events of Erin's (one naming only her id) and one of Bob's."""
    with ExitStack() as stack:
        extra = {}
        if request.param == "postgres":
            extra["database_url"] = stack.enter_context(fresh_database())
        server = stack.enter_context(InProcessServer(workdir, **server_settings(standin, **extra)))
        for webhook_id, body in [
            ("msg_erin1", of("cus_erin", EMAIL)),
            ("msg_erin2", of("cus_erin", None)),
            ("msg_bob", of("cus_bob", "bob@example.com")),
        ]:
            assert server.post(body, webhook_id=webhook_id).status_code == 200
        server.wait_idle()
        yield server


def database_files(server: InProcessServer) -> list[Path]:
    return sorted((server.workdir / "data").glob("*.db*"))


def test_after_erase_the_email_is_nowhere_in_the_files_or_the_api(
    served: InProcessServer,
) -> None:
    sqlite = not served.settings.get("database_url")
    if sqlite:
        assert any(EMAIL.encode() in f.read_bytes() for f in database_files(served))
    counted = run("erase", "--customer", EMAIL, "--server", served.url)
    assert counted.returncode == 0, counted.stderr
    assert f"2 stored events name {EMAIL}, with 6 deliveries" in counted.stdout
    assert "run again with --yes" in counted.stdout  # not a terminal: nothing erased yet
    assert len(served.api("GET", "/api/events").json()) == 3

    erased = run("erase", "--customer", EMAIL, "--yes", "--json", "--server", served.url)
    assert erased.returncode == 0, erased.stderr
    answer = json.loads(erased.stdout)
    assert (answer["events"], answer["deliveries"], answer["erased"]) == (2, 6, True)

    assert [e["webhook_id"] for e in served.api("GET", "/api/events").json()] == ["msg_bob"]
    for path in ("/api/events", "/api/deliveries"):
        text = served.api("GET", path, params={"limit": 1000}).text
        assert EMAIL not in text and "cus_erin" not in text
        assert served.api("GET", path, params={"q": EMAIL}).json() == []
    if sqlite:
        for file in database_files(served):
            content = file.read_bytes()
            assert EMAIL.encode() not in content, file.name
            assert b"cus_erin" not in content, file.name
    again = run("erase", "--customer", "cus_erin", "--server", served.url)
    assert again.returncode == 0 and "no stored event names cus_erin" in again.stdout
    trail = run("audit", "--json", "--server", served.url)
    assert trail.returncode == 0 and EMAIL not in trail.stdout
    (erasure,) = [e for e in json.loads(trail.stdout) if e["action"] == "erasure"]
    assert erasure["detail"] == "2 events, 6 deliveries; who: (withheld)"
    assert run("audit", "--server", served.url).returncode == 0  # the table


def test_an_erasure_without_a_customer_is_a_clear_422(served: InProcessServer) -> None:
    answer = served.api("POST", "/api/erasures", params={"customer": "two words"})
    assert answer.status_code == 422 and "is not a customer id or an email" in answer.text
    missing = served.api("POST", "/api/erasures")
    assert missing.status_code == 422
    ran = run("erase", "--server", served.url)
    assert ran.returncode == 2 and "--customer" in ran.stderr
