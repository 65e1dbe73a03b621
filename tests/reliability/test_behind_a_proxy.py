"""Behind a reverse proxy on the same host every caller is loopback: without a token the admin
API refuses proxied requests, and proxy headers are believed only from configured proxies."""

from __future__ import annotations

from pathlib import Path

import pytest

from dodo_transform.testing import InProcessServer, SegmentStandIn, server_settings
from tests.integration.conftest import example

pytestmark = pytest.mark.reliability

TOKEN = "adm-proxy-7c1d"
PROXIED = [
    {"X-Real-IP": "203.0.113.9"},
    {"Forwarded": "for=203.0.113.9;proto=https"},
    {"X-Forwarded-For": "127.0.0.1"},  # a spoofed loopback, passed on by the proxy
    {"X-Forwarded-Host": "relay.example.com"},
]


def test_without_a_token_proxied_admin_requests_are_refused(server: InProcessServer) -> None:
    assert server.api("GET", "/api/events").status_code == 200  # loopback, no proxy: admin
    for headers in PROXIED:
        response = server.api("GET", "/api/events", headers=headers)
        assert response.status_code == 403, (headers, response.text)
        assert "DODO_TRANSFORM_ADMIN_TOKEN" in response.json()["detail"]
    # Webhooks do not depend on the admin rules.
    assert server.post(example("payment.succeeded"), headers=PROXIED[0]).status_code == 200


def next_link_scheme(server: InProcessServer) -> str:
    """The scheme the server believes the request came with, as its `Link` header shows."""
    response = server.api(
        "GET",
        "/api/events",
        params={"limit": 1},
        headers={
            "Authorization": f"Bearer {TOKEN}",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-For": "203.0.113.9",
        },
    )
    assert response.status_code == 200, response.text
    return response.headers["Link"].removeprefix("<").split(":", 1)[0]


@pytest.mark.parametrize(
    ("trusted", "scheme"), [(None, "http"), ("127.0.0.1", "https")], ids=["default", "opted in"]
)
def test_proxy_headers_are_believed_only_from_configured_proxies(
    workdir: Path, standin: SegmentStandIn, trusted: str | None, scheme: str
) -> None:
    extra = {"admin_token": TOKEN}
    if trusted is not None:
        extra["forwarded_allow_ips"] = trusted
    # uvicorn as `serve` configures it: which proxies it believes is its part.
    with InProcessServer(workdir, **server_settings(standin, **extra)) as server:
        for _ in range(2):  # two events: a page of one has a next link
            assert server.post(example("payment.succeeded")).status_code == 200
        assert next_link_scheme(server) == scheme
