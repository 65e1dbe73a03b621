"""Who may use the admin API (and, later, the console): a bearer token, else loopback only."""

from __future__ import annotations

import hmac
import ipaddress

from fastapi import HTTPException, Request

from dodo_transform.web.context import Context


async def admin_guard(request: Request, context: Context) -> None:
    """Bearer token when one is set; otherwise loopback callers only."""
    token = context.admin_token
    if token is not None and token.get_secret_value():
        offered = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(offered.encode(), token.get_secret_value().encode()):
            raise HTTPException(401, "admin API: send Authorization: Bearer <token>")
        return
    host = request.client.host if request.client else ""
    if not _is_loopback(host):
        raise HTTPException(
            403, "admin API answers only on loopback unless DODO_TRANSFORM_ADMIN_TOKEN is set"
        )


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
