"""Admin access: a bearer token when one is set; otherwise loopback callers that did not come
through a proxy."""

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
from dodo_transform.web.access import PROXY_HEADERS

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


def call(app: FastAPI, client: str, headers: dict[str, str] | None = None) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(client, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            return await http.get("/api/deliveries", headers=headers)

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
