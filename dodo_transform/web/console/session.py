"""Who may use the console, and proof that a form was sent by the console's own page.

Access follows the admin API's rule (`web.access.admin_guard`): with no admin token, a loopback
page of the service itself (a loopback caller, at a loopback host name); with one, the token.
A browser cannot send a bearer header on a link, so the console's login page trades the token
for a session: a random id in a cookie (HttpOnly, SameSite=Strict, and Secure whenever the
browser reached the service over https), and in the store, for `SESSION_SECONDS`, a key made
from that id and the token. The store keeps it so that every instance knows it; logging out
deletes it there, so a copied cookie ends with it; and a new token finds none of the old keys.
A bearer header works too.

Forms that change something carry a CSRF token that must equal the value of a
SameSite=Strict cookie only the console's pages set (double submit), and a
request sent by a page of another origin is refused outright (`access.refuse_cross_site`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request, Response
from pydantic import SecretStr

from dodo_transform.web.access import admin_guard, refuse_cross_site, secrets_equal
from dodo_transform.web.context import Context

SESSION_COOKIE = "dodo_console_session"
CSRF_COOKIE = "dodo_console_csrf"
CSRF_FIELD = "csrf"
SESSION_SECONDS = 12 * 3600
_TOKEN_CHARS = 43  # secrets.token_urlsafe(32)


class LoginRequired(Exception):
    """Answered by a redirect to the login page (see `web.console.pages`)."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def token_of(secret: SecretStr | None) -> str:
    """The admin token, or "" when none is set."""
    return secret.get_secret_value() if secret is not None else ""


def reached_over_https(request: Request) -> bool:
    """Whether the browser used https: as the server saw it (directly, or as told by a proxy
    named in DODO_TRANSFORM_FORWARDED_ALLOW_IPS), or as any proxy says. A proxy nobody named
    is believed here only because that can do no harm: it can only make the cookie Secure."""
    if request.url.scheme == "https":
        return True
    proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return proto == "https" or "proto=https" in request.headers.get("forwarded", "").lower()


# --- the session ------------------------------------------------------------------------------


def session_key(token: str, session_id: str) -> str:
    """What the store knows a session by: neither the cookie nor the token can be read back
    from it, and another token gives another key."""
    message = b"dodo-transform console session\0" + session_id.encode()
    return hmac.new(token.encode(), message, hashlib.sha256).hexdigest()


def _cookie_id(request: Request) -> str | None:
    found = request.cookies.get(SESSION_COOKIE, "")
    return found if _well_formed(found) else None


def _well_formed(value: str) -> bool:
    return len(value) == _TOKEN_CHARS and value.replace("-", "").replace("_", "").isalnum()


async def start_session(request: Request, response: Response, context: Context) -> None:
    """Open a session in the store and give the browser its cookie."""
    session_id = secrets.token_urlsafe(32)
    key = session_key(token_of(context.admin_token), session_id)
    await asyncio.to_thread(context.store.open_session, key, SESSION_SECONDS)
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="strict",
        secure=reached_over_https(request),
        path="/",
    )


async def end_session(request: Request, response: Response, context: Context) -> None:
    """Delete the browser's session from the store (every copy of its cookie ends) and its
    cookie from the browser."""
    session_id, token = _cookie_id(request), token_of(context.admin_token)
    if session_id is not None and token:
        await asyncio.to_thread(context.store.close_session, session_key(token, session_id))
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")


async def in_session(request: Request, context: Context) -> bool:
    """Whether the request's cookie names a session the store keeps for the current token."""
    session_id, token = _cookie_id(request), token_of(context.admin_token)
    if session_id is None or not token:
        return False
    return await asyncio.to_thread(context.store.session_open, session_key(token, session_id))


# --- the guard --------------------------------------------------------------------------------


async def console_guard(request: Request, context: Context) -> None:
    """A session or a bearer token when a token is set; else the admin API's loopback rule."""
    if token_of(context.admin_token):
        if await in_session(request, context):
            return
        if request.headers.get("authorization"):
            await admin_guard(request, context)
            return
        raise LoginRequired(local_path(request))
    await admin_guard(request, context)


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
    if _well_formed(existing):
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
            secure=reached_over_https(request),
            path="/",
        )


def check_csrf(request: Request, offered: str | None) -> None:
    """Refuse a state-changing request not sent by one of the console's own pages."""
    refuse_cross_site(request)
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not offered or not secrets_equal(cookie, offered):
        raise HTTPException(403, "this form has expired: reload the page and try again")
