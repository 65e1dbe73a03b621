"""Who may use the console, and proof that a form was sent by the console's own page.

Access follows the admin API's rule (`web.access.admin_guard`): with no admin
token, loopback callers only; with one, the token. A browser cannot send a
bearer header on a link, so the console's login page trades the token for a
session cookie: signed with a key derived from the token (a new token ends
every session), HttpOnly, SameSite=Strict. A bearer header works too.

With no token, the `Host` a browser names must also be a loopback name: a page
on another site that re-points its own name at 127.0.0.1 (DNS rebinding) is
then still refused.

Forms that change something carry a CSRF token that must equal the value of a
SameSite=Strict cookie only the console's pages set (double submit), and a
cross-site `Origin` is refused outright.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, HTTPException, Request, Response
from pydantic import SecretStr

from dodo_transform.web.access import admin_guard
from dodo_transform.web.context import Context

SESSION_COOKIE = "dodo_console_session"
CSRF_COOKIE = "dodo_console_csrf"
CSRF_FIELD = "csrf"
SESSION_SECONDS = 12 * 3600
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]", "::1")


class LoginRequired(Exception):
    """Answered by a redirect to the login page (see `web.console.pages`)."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def token_of(secret: SecretStr | None) -> str:
    """The admin token, or "" when none is set."""
    return secret.get_secret_value() if secret is not None else ""


# --- the session cookie -----------------------------------------------------------------------


def _signature(token: str, expires: int) -> str:
    key = hashlib.sha256(b"dodo-transform console session\0" + token.encode()).digest()
    return hmac.new(key, str(expires).encode(), hashlib.sha256).hexdigest()


def new_session(token: str, now: float | None = None) -> str:
    expires = int((time.time() if now is None else now) + SESSION_SECONDS)
    return f"{expires}.{_signature(token, expires)}"


def session_valid(cookie: str | None, token: str, now: float | None = None) -> bool:
    if not cookie or "." not in cookie:
        return False
    expires, _, signature = cookie.partition(".")
    if not expires.isdigit() or int(expires) < (time.time() if now is None else now):
        return False
    return hmac.compare_digest(signature, _signature(token, int(expires)))


def token_matches(offered: str, token: str) -> bool:
    return hmac.compare_digest(offered.strip().encode(), token.encode())


def set_session(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        new_session(token),
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")


# --- the guard --------------------------------------------------------------------------------


async def console_guard(request: Request, context: Context) -> None:
    """The session cookie or a bearer token when a token is set; else loopback by name."""
    token = token_of(context.admin_token)
    if token:
        if session_valid(request.cookies.get(SESSION_COOKIE), token):
            return
        if request.headers.get("authorization"):
            await admin_guard(request, context)
            return
        raise LoginRequired(local_path(request))
    await admin_guard(request, context)
    if not _loopback_host(request.headers.get("host", "")):
        raise HTTPException(403, "the console answers only to a loopback host name")


def _loopback_host(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return name.lower() in _LOOPBACK_NAMES or name.startswith("127.")


def local_path(request: Request) -> str:
    query = f"?{request.url.query}" if request.url.query else ""
    return request.url.path + query


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path on this site, never another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def login_url(next_url: str) -> str:
    return "/login?next=" + quote(next_url, safe="/")


Guarded = Annotated[None, Depends(console_guard)]


# --- CSRF -------------------------------------------------------------------------------------


def csrf_token(request: Request) -> str:
    """The token forms on this page carry: the browser's CSRF cookie, or a new one."""
    existing = request.cookies.get(CSRF_COOKIE, "")
    if len(existing) == 43 and existing.replace("-", "").replace("_", "").isalnum():
        return existing
    fresh: str = request.state.__dict__.setdefault("csrf_token", secrets.token_urlsafe(32))
    return fresh


def keep_csrf_cookie(request: Request, response: Response) -> None:
    """Set the CSRF cookie when this page made a new token."""
    fresh = request.state.__dict__.get("csrf_token")
    if fresh:
        response.set_cookie(
            CSRF_COOKIE,
            fresh,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )


def check_csrf(request: Request, offered: str | None) -> None:
    """Refuse a state-changing request not sent by one of the console's own pages."""
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        raise HTTPException(403, "cross-site request refused")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not offered or not hmac.compare_digest(cookie, offered):
        raise HTTPException(403, "this form has expired: reload the page and try again")
