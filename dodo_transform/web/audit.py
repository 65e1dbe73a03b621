"""The audit trail's entries, as the web edge records them: every save, restore, replay, bulk
replay, backfill, erasure and login, with who made it (see `store.AuditEntry`).

Who: the console session (a short hash of its cookie: enough to tell two sessions apart, never
the cookie itself) or the admin API (with the token, or from loopback without one), and the
client's address. What: ids, counts, versions and filters, never event contents (a search's
words and an erased customer's identifier are withheld: they name a customer).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Mapping
from typing import Any

from fastapi import Request, Response

from dodo_transform.store import AuditEntry
from dodo_transform.web.console.session import SESSION_COOKIE
from dodo_transform.web.context import WebContext

WITHHELD = "(withheld)"
# Filters whose values name a customer: recorded as there, never as what they said.
_PERSONAL = ("q",)


def actor(request: Request, session_cookie: str | None = None) -> str:
    """Who made a request: its console session (`session_cookie`: the one a login opens) or
    the API, and from which address."""
    address = request.client.host if request.client else "an unknown address"
    cookie = session_cookie or request.cookies.get(SESSION_COOKIE)
    if cookie:
        who = f"console session {hashlib.sha256(cookie.encode()).hexdigest()[:12]}"
    elif request.headers.get("authorization"):
        who = "admin API (token)"
    elif request.url.path.startswith("/api/"):
        who = "admin API"
    else:
        who = "console"
    return f"{who} from {address}"


def shown_filters(filters: Mapping[str, Any]) -> str:
    """Filters as an audit entry keeps them: a search's words withheld."""
    return " ".join(
        f"{key}={WITHHELD if key in _PERSONAL else value}" for key, value in filters.items()
    )


def session_opened(response: Response) -> str | None:
    """The console session cookie `response` sets, if it sets one (a login)."""
    for header in response.headers.getlist("set-cookie"):
        name, _, rest = header.partition("=")
        if name.strip() == SESSION_COOKIE:
            return rest.split(";", 1)[0] or None
    return None


async def record(
    request: Request,
    context: WebContext,
    action: str,
    subject: str,
    detail: str = "",
    *,
    session_cookie: str | None = None,
) -> None:
    """Add an entry to the audit trail, now, made by whoever made `request`."""
    entry = AuditEntry(time.time(), action, subject, detail, actor(request, session_cookie))
    await asyncio.to_thread(context.store.record_audit, entry)
