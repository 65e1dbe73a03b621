"""The login page: the admin token in, a session cookie out (see `session.py`)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from dodo_transform.web.console import session
from dodo_transform.web.console.rendering import page, redirect
from dodo_transform.web.context import Context

FAILED_LOGIN_DELAY_SECONDS = 1.0

routes = APIRouter(include_in_schema=False)


@routes.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, context: Context, next: str = "/") -> Response:
    if not session.token_of(context.admin_token):
        return redirect(session.safe_next(next))  # no token: nothing to log in with
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
    if not expected or not session.token_matches(token, expected):
        await asyncio.sleep(FAILED_LOGIN_DELAY_SECONDS)  # slows guessing down
        return await page(request, "login.html", next=session.safe_next(next), failed=True)
    response = redirect(session.safe_next(next))
    session.set_session(response, request, expected)
    return response


@routes.post("/logout")
async def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    session.check_csrf(request, csrf)
    response = redirect("/login")
    session.end_session(response)
    return response
