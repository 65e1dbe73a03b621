"""The login page: the admin token in, a session out (see `session.py`).

Guessing is limited per client address, counted in the store so that every instance agrees:
`LOGIN_ATTEMPTS` a `LOGIN_WINDOW_SECONDS`, then 429 with `Retry-After` until the window ends.
Each attempt is counted before the token is compared, so a burst of attempts sent at once gets
no more comparisons than one sent slowly. And the token never crosses a network in clear: from
another machine, the console logs in only over https.
"""

from __future__ import annotations

import asyncio
import math
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from dodo_transform.web import audit
from dodo_transform.web.access import loopback_address, secrets_equal
from dodo_transform.web.console import session
from dodo_transform.web.console.rendering import page, redirect
from dodo_transform.web.context import Context

LOGIN_ATTEMPTS = 5
LOGIN_WINDOW_SECONDS = 60.0

routes = APIRouter(include_in_schema=False)


@routes.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, context: Context, next: str = "/") -> Response:
    if not session.token_of(context.admin_token):
        return redirect(session.safe_next(next))  # no token: nothing to log in with
    refuse_login_in_clear(request)
    return await page(request, "login.html", next=session.safe_next(next), failed=False)


@routes.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    context: Context,
    token: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    session.check_csrf(request, csrf)
    expected = session.token_of(context.admin_token)
    if expected:
        refuse_login_in_clear(request)
        await count_attempt(request, context)
    if not expected or not secrets_equal(token.strip(), expected):
        await audit.record(request, context, "login failed", "the console", "a wrong token")
        return await page(request, "login.html", next=session.safe_next(next), failed=True)
    await asyncio.to_thread(context.store.forget_login_attempts, client_address(request))
    response = redirect(session.safe_next(next))
    await session.start_session(request, response, context)
    # Recorded under the session it opens: the cookie is on the response, not the request.
    opened = audit.session_opened(response)
    await audit.record(request, context, "login", "the console", session_cookie=opened)
    return response


@routes.post("/logout")
async def logout(request: Request, context: Context, csrf: Annotated[str, Form()] = "") -> Response:
    session.check_csrf(request, csrf)
    response = redirect("/login")
    await session.end_session(request, response, context)
    return response


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


def refuse_login_in_clear(request: Request) -> None:
    """403 for a login over plain http from another machine: the token would cross the
    network in clear, and so would the session cookie on every page after it.

    https as the server sees it: directly, or as a proxy named in
    DODO_TRANSFORM_FORWARDED_ALLOW_IPS says; a proxy nobody named may be on another machine,
    with plain http on the hop to this one."""
    if request.url.scheme == "https" or loopback_address(client_address(request)):
        return
    raise HTTPException(
        403,
        "log in over https: over plain http the admin token and the session cookie would cross"
        " the network in clear; publish the console through a TLS proxy named in"
        " DODO_TRANSFORM_FORWARDED_ALLOW_IPS (docs/going-live.md), or use an SSH tunnel",
    )


async def count_attempt(request: Request, context: Context) -> None:
    """Count a login attempt from the client's address; 429 past the limit."""
    attempts, wait = await asyncio.to_thread(
        context.store.count_login_attempt, client_address(request), LOGIN_WINDOW_SECONDS
    )
    if attempts > LOGIN_ATTEMPTS:
        seconds = max(1, math.ceil(wait))
        raise HTTPException(
            429,
            f"too many login attempts from this address: try again in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )
