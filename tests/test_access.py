"""Admin access: a bearer token when one is set; otherwise loopback callers that did not come
through a proxy, at a loopback host name, and for a change, from the service's own pages or
from no page at all (the CLI)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from dodo_transform.service import build_service
from dodo_transform.settings import load_settings
from dodo_transform.testing import SECRET
from dodo_transform.web.access import PROXY_HEADERS, loopback_host

TOKEN = "adm-unit-3e9f"


def app_for(tmp_path: Path, token: str | None) -> Iterator[FastAPI]:
    (tmp_path / "transforms").mkdir(exist_ok=True)
    settings = load_settings(
        transforms=tmp_path / "transforms",
        data_dir=tmp_path / "data",
        webhook_secret=SECRET,
        admin_token=token,
    )
    service = build_service(settings)
    try:
        yield service.app
    finally:
        assert service.intake is not None
        service.intake.close()
        service.store.close()


@pytest.fixture
def open_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FastAPI]:
    monkeypatch.delenv("DODO_TRANSFORM_ADMIN_TOKEN", raising=False)
    yield from app_for(tmp_path, None)


@pytest.fixture
def token_app(tmp_path: Path) -> Iterator[FastAPI]:
    yield from app_for(tmp_path, TOKEN)


def call(
    app: FastAPI,
    client: str,
    headers: dict[str, str] | None = None,
    *,
    method: str = "GET",
    path: str = "/api/deliveries",
) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(client, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
            return await http.request(method, path, headers=headers)

    return asyncio.run(go())


@pytest.mark.parametrize("client", ["127.0.0.1", "::1", "127.0.1.1"])
def test_without_a_token_loopback_callers_are_admin(open_app: FastAPI, client: str) -> None:
    assert call(open_app, client).status_code == 200


@pytest.mark.parametrize("client", ["203.0.113.7", "10.0.0.8", "192.168.1.2", "fe80::1"])
def test_without_a_token_other_callers_are_refused(open_app: FastAPI, client: str) -> None:
    response = call(open_app, client)
    assert response.status_code == 403
    assert "DODO_TRANSFORM_ADMIN_TOKEN" in response.json()["detail"]


@pytest.mark.parametrize("header", PROXY_HEADERS)
def test_without_a_token_a_proxied_loopback_request_is_refused(
    open_app: FastAPI, header: str
) -> None:
    response = call(open_app, "127.0.0.1", {header: "203.0.113.7"})
    assert response.status_code == 403
    detail = response.json()["detail"]
    assert "proxy" in detail and "DODO_TRANSFORM_ADMIN_TOKEN" in detail and header in detail


@pytest.mark.parametrize(
    "header", ["Forwarded", "X-Forwarded-For", "x-real-ip", "X-FORWARDED-HOST", "Via"]
)
def test_proxy_headers_are_recognised_in_any_case(open_app: FastAPI, header: str) -> None:
    assert call(open_app, "127.0.0.1", {header: "x"}).status_code == 403


def test_with_a_token_the_token_decides_behind_a_proxy_too(token_app: FastAPI) -> None:
    proxied = {"X-Forwarded-For": "203.0.113.7", "X-Real-IP": "203.0.113.7"}
    assert call(token_app, "127.0.0.1", proxied).status_code == 401
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert call(token_app, "127.0.0.1", proxied | bearer).status_code == 200
    assert call(token_app, "203.0.113.7", bearer).status_code == 200
    assert call(token_app, "127.0.0.1", {"Authorization": "Bearer wrong"}).status_code == 401


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.0.0.1:8000",
        "127.9.8.7:80",
        "localhost",
        "LocalHost:8000",
        "[::1]",
        "[::1]:8000",
    ],
)
def test_loopback_addresses_and_localhost_are_loopback_hosts(host: str) -> None:
    assert loopback_host(host)


@pytest.mark.parametrize(
    "host",
    [
        "attacker.example",
        "127.attacker.example",
        "127.0.0.1.nip.io",
        "127.0.0.1.nip.io:8000",
        "localhost.attacker.example",
        "[::1].attacker.example",
        "[::1]x",
        "::1",  # an IPv6 address in a Host is bracketed
        "[localhost]",
        "[127.0.0.1]",
        "127.0.0.1:",
        "127.0.0.1:http",
        "127.0.0.1:99999",
        "0.0.0.0:8000",
        "10.0.0.8",
        "[::ffff:127.0.0.1]",
        "",
    ],
)
def test_anything_else_is_no_loopback_host(host: str) -> None:
    assert not loopback_host(host)


@pytest.mark.parametrize("host", ["attacker.example", "127.attacker.example:8000"])
def test_without_a_token_a_rebound_host_is_refused(open_app: FastAPI, host: str) -> None:
    """A page whose name now points at 127.0.0.1 (DNS rebinding) names its own host."""
    for method, path in (("GET", "/api/events"), ("POST", "/api/replay")):
        response = call(open_app, "127.0.0.1", {"Host": host}, method=method, path=path)
        assert response.status_code == 403
        assert "not a loopback name" in response.json()["detail"]


@pytest.mark.parametrize(
    "sender",
    [
        {"Origin": "https://attacker.example"},
        {"Origin": "null"},  # a sandboxed frame, a file:// page
        {"Origin": "http://127.0.0.1:3000"},  # another local service's page
        {"Referer": "https://attacker.example/page"},
    ],
)
def test_without_a_token_a_change_sent_by_another_sites_page_is_refused(
    open_app: FastAPI, sender: dict[str, str]
) -> None:
    response = call(open_app, "127.0.0.1", sender, method="POST", path="/api/replay")
    assert response.status_code == 403
    assert response.json()["detail"].startswith("cross-site request refused")


@pytest.mark.parametrize(
    "sender",
    [
        {},  # the CLI, curl: no page at all
        {"Origin": "http://127.0.0.1:8000"},
        {"Referer": "http://127.0.0.1:8000/deliveries"},
    ],
    ids=["no page", "own origin", "own referer"],
)
def test_without_a_token_a_change_from_the_cli_or_the_own_origin_is_served(
    open_app: FastAPI, sender: dict[str, str]
) -> None:
    response = call(open_app, "127.0.0.1", sender, method="POST", path="/api/replay")
    assert response.status_code == 200, response.text


def test_a_link_from_another_site_still_opens_a_page(open_app: FastAPI) -> None:
    """Reading changes nothing: an alert in a chat links to the console or the API."""
    referred = {"Referer": "https://chat.example/alerts", "Origin": "https://chat.example"}
    assert call(open_app, "127.0.0.1", referred).status_code == 200


def test_with_a_token_the_host_does_not_matter(token_app: FastAPI) -> None:
    bearer = {"Authorization": f"Bearer {TOKEN}", "Host": "relay.example.com"}
    assert call(token_app, "203.0.113.7", bearer).status_code == 200
