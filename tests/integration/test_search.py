"""Search through the real server, on both stores: the admin API, the console's page, the CLI."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from dodo_transform.testing import InProcessServer, SegmentStandIn, server_settings
from tests.command_line import run
from tests.integration.conftest import example
from tests.postgres import fresh_database


def paying(customer: str, email: str) -> dict[str, Any]:
    body = example("payment.succeeded")
    body["data"]["customer"] |= {"customer_id": customer, "email": email}
    return body


@pytest.fixture(params=["sqlite", "postgres"])
def searched(
    request: pytest.FixtureRequest, workdir: Path, standin: SegmentStandIn
) -> Iterator[InProcessServer]:
    """A server holding two payments of Ann's (ann@example.com) and one of Bob's."""
    with ExitStack() as stack:
        extra = {}
        if request.param == "postgres":
            extra["database_url"] = stack.enter_context(fresh_database())
        server = stack.enter_context(InProcessServer(workdir, **server_settings(standin, **extra)))
        for webhook_id, who, email in [
            ("msg_ann1", "cus_ann", "Ann@Example.com"),
            ("msg_bob", "cus_bob", "bob@example.com"),
            ("msg_ann2", "cus_ann", "ann@example.com"),
        ]:
            assert server.post(paying(who, email), webhook_id=webhook_id).status_code == 200
        server.wait_idle()
        yield server


def webhooks(answer: list[dict[str, Any]]) -> set[str]:
    return {row["webhook_id"] for row in answer}


def test_a_search_by_customer_email_finds_its_deliveries_and_events(
    searched: InProcessServer,
) -> None:
    deliveries = searched.api("GET", "/api/deliveries", params={"q": "ann@example.com"})
    assert deliveries.status_code == 200
    assert webhooks(deliveries.json()) == {"msg_ann1", "msg_ann2"}
    assert len(deliveries.json()) == 6  # three transforms each
    events = searched.api("GET", "/api/events", params={"q": "ANN@EXAMPLE.COM"}).json()
    assert [e["webhook_id"] for e in events] == ["msg_ann2", "msg_ann1"]
    narrowed = searched.api(
        "GET",
        "/api/deliveries",
        params={"q": "cus_ann", "status": "delivered", "destination": "api.segment.io"},
    ).json()
    assert webhooks(narrowed) == {"msg_ann1", "msg_ann2"}
    assert {d["status"] for d in narrowed} == {"delivered"}
    later = searched.api("GET", "/api/deliveries", params={"q": "cus_ann", "since": "2999-01-01"})
    assert later.json() == []


@pytest.mark.parametrize(
    ("params", "said"),
    [
        ({"q": "   "}, "nothing to search for"),
        ({"q": " ".join(["w"] * 3 + [f"x{n}" for n in range(9)])}, "at most 8 words"),
        ({"since": "yesterday"}, "since: 'yesterday' is not a date"),
        ({"until": "13/13/2026"}, "until: '13/13/2026' is not a date"),
        ({"status": "lost"}, "status"),
    ],
)
def test_a_search_that_cannot_run_is_a_clear_422(
    searched: InProcessServer, params: dict[str, str], said: str
) -> None:
    for path in ("/api/deliveries", "/api/events"):
        answer = searched.api("GET", path, params=params)
        assert answer.status_code == 422, answer.text
        assert said in answer.text


def test_the_console_page_searches_with_the_filters_in_its_url(
    searched: InProcessServer,
) -> None:
    page = searched.api(
        "GET",
        "/deliveries",
        params={"q": "ann@example.com", "status": "delivered", "since": "2000-01-01"},
    )
    assert page.status_code == 200, page.text
    assert len(re.findall(r'data-testid="delivery-row"', page.text)) == 4  # two are skipped
    assert 'value="ann@example.com"' in page.text and 'data-testid="search"' in page.text
    assert 'name="since" value="2000-01-01T00:00:00+00:00"' in page.text  # kept for the next
    none = searched.api("GET", "/deliveries", params={"q": "nobody@example.com"})
    assert 'data-testid="no-match"' in none.text
    refused = searched.api("GET", "/deliveries", params={"q": "  ,  "})
    assert refused.status_code == 400 and "nothing to search for" in refused.text


def test_the_cli_searches_deliveries_and_events(searched: InProcessServer) -> None:
    ran = run("deliveries", "--search", "bob@example.com", "--json", "--server", searched.url)
    assert ran.returncode == 0, ran.stderr
    assert webhooks(json.loads(ran.stdout)) == {"msg_bob"}
    ran = run(
        "events",
        "--search",
        "cus_ann",
        "--event-type",
        "payment.succeeded",
        "--since",
        "2000-01-01",
        "--until",
        "2999-01-01",
        "--server",
        searched.url,
    )
    assert ran.returncode == 0, ran.stderr
    assert re.findall(r"msg_\w+", ran.stdout) == ["msg_ann2", "msg_ann1"]
    none = run("events", "--search", "nobody@example.com", "--server", searched.url)
    assert none.returncode == 0 and "no events match these filters" in none.stdout
    wrong = run("deliveries", "--since", "soon", "--server", searched.url)
    assert wrong.returncode == 1 and "since: 'soon' is not a date" in wrong.stderr
