"""Pages: Jinja2 templates rendered off the event loop, with the console's security headers.

Rendering happens in a thread so that a long page never holds up a webhook
being acknowledged on the same loop. Every page carries a strict
Content-Security-Policy: scripts and styles only from this origin's static
files, no inline script, nothing fetched from anywhere else. Every value a page
shows has the service's secrets replaced (see `web/scrubbing.py`), but for the
file in the editor (`Verbatim`), which a save writes back as it is.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Collection
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from dodo_transform.outgoing import OutgoingRequest, segment
from dodo_transform.outgoing.redaction import scrub
from dodo_transform.web.console import session

TEMPLATES = Path(__file__).resolve().parent / "templates"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'{style}; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY.format(style=""),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def when(timestamp: float | None) -> str:
    """A stored time as people read it, in UTC (the zone the store and the logs use)."""
    if not timestamp:
        return "-"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(timestamp: float) -> str:
    """A time as a URL gives it back (`since`, `until`): ISO 8601 in UTC."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


def ago(timestamp: float | None, now: float | None = None) -> str:
    if not timestamp:
        return "-"
    seconds = (datetime.now(UTC).timestamp() if now is None else now) - timestamp
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now" if seconds < 5 else f"{int(seconds)} s ago"


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def pretty_body(body: bytes | str) -> str:
    """A stored body, indented if it is JSON, as it came otherwise."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    try:
        return pretty(json.loads(text))
    except ValueError:
        return text


def message(request: OutgoingRequest | None) -> str:
    """A delivery's message in a few words (`track "Payment Completed" cus_1`), or ""."""
    if request is None:
        return ""
    return segment.summary(request.method, request.url, request.payload)


class Verbatim(str):
    """Text a page shows exactly as it is: the file in the editor. Scrubbed of a secret it
    holds, a save would write the redaction into the file."""


# The secrets hidden from the page being rendered (set by `page`, read by `_hide_secrets`).
_HIDDEN: ContextVar[Collection[str]] = ContextVar("hidden", default=frozenset())


def _hide_secrets(value: Any) -> Any:
    """Jinja's `finalize`: every value a template shows, with the service's secrets replaced."""
    hidden = _HIDDEN.get()
    if hidden and isinstance(value, str) and not isinstance(value, Verbatim):
        return scrub(value, hidden)
    return value


def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_hide_secrets,
    )
    environment.filters |= {
        "when": when,
        "iso": iso,
        "ago": ago,
        "pretty": pretty,
        "body": pretty_body,
        "message": message,
    }
    return environment


ENVIRONMENT = _environment()


async def page(
    request: Request, template: str, status_code: int = 200, **values: Any
) -> HTMLResponse:
    """`template` rendered with `values`, the CSRF token and what every page shows.

    The editor's theme is a `<style>` element CodeMirror adds: this page's policy allows
    it by a nonce of its own, which the page hands to the editor (no inline script)."""
    context = request.app.state.context
    _HIDDEN.set(frozenset(context.secrets()))
    if isinstance(values.get("source"), str):
        values["source"] = Verbatim(values["source"])
    nonce = secrets.token_urlsafe(16)
    values |= {
        "style_nonce": nonce,
        "request": request,
        "csrf": session.csrf_token(request),
        "csrf_field": session.CSRF_FIELD,
        "dry_run": context.dry_run,
        "logged_in": bool(request.cookies.get(session.SESSION_COOKIE)),
        "path": request.url.path,
    }
    html = await asyncio.to_thread(ENVIRONMENT.get_template(template).render, values)
    policy = CONTENT_SECURITY_POLICY.format(style=f" 'nonce-{nonce}'")
    response = HTMLResponse(
        html, status_code, SECURITY_HEADERS | {"Content-Security-Policy": policy}
    )
    session.keep_csrf_cookie(request, response)
    return response


def redirect(url: str) -> Response:
    return RedirectResponse(url, 303, SECURITY_HEADERS)
