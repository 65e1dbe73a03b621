"""Who may use the admin API (and, later, the console): a bearer token, else loopback only.

Without a token the caller's address decides, and behind a reverse proxy on the same host every
caller is loopback. So a request that carries any header a proxy adds is refused: behind a
proxy, the token is required. (Proxy headers are not believed either unless the proxy is named
in `DODO_TRANSFORM_FORWARDED_ALLOW_IPS`; see `web.server`.) A proxy that adds none of them
cannot be told from a local caller: the README says to set the token.
"""

from __future__ import annotations

import hmac
import ipaddress

from fastapi import HTTPException, Request

from dodo_transform.web.context import Context

# Headers proxies add to say for whom they forward (lower case, as Starlette looks them up).
PROXY_HEADERS = (
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-forwarded-server",
    "x-real-ip",
    "x-client-ip",
    "true-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "x-cluster-client-ip",
    "via",
)


async def admin_guard(request: Request, context: Context) -> None:
    """Bearer token when one is set; otherwise loopback callers that came through no proxy."""
    token = context.admin_token
    if token is not None and token.get_secret_value():
        offered = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(offered.encode(), token.get_secret_value().encode()):
            raise HTTPException(401, "admin API: send Authorization: Bearer <token>")
        return
    proxied = next((name for name in PROXY_HEADERS if name in request.headers), None)
    if proxied is not None:
        raise HTTPException(
            403,
            f"admin API: this request came through a proxy (it carries {proxied}); behind a"
            " proxy the admin API needs a token: set DODO_TRANSFORM_ADMIN_TOKEN and send"
            " Authorization: Bearer <token>",
        )
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
