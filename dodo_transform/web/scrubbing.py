"""Secrets never leave through the web edge: every admin API answer is scrubbed on its way out.

The API shows stored requests, errors, console output and settings, and any of them may hold
a secret the service knows: a header credential from transforms.toml, a write key, a webhook
URL read from `${NAME}` (its path is its token), a value a handler copied from `env` into a
payload, or an error in which a destination echoed a credential. Each is redacted where it is
stored or built already; this is the last net, on the answer itself, so a field added
tomorrow cannot leak one. A JSON answer is scrubbed string by string (never a number, which a
short secret could otherwise cut in two, nor the JSON's own syntax). The console's pages do
the same when they render (see `console/rendering.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dodo_transform.outgoing.redaction import scrub, scrub_json_text

Secrets = Callable[[], Collection[str]]


def scrubbed_body(body: bytes, content_type: str, secrets: Collection[str]) -> bytes:
    """`body` with every secret taken out: inside its strings in JSON, else in the text."""
    text = body.decode("utf-8", "surrogateescape")
    hidden = scrub_json_text(text, secrets) if "json" in content_type else scrub(text, secrets)
    return hidden.encode("utf-8", "surrogateescape")


class ScrubAnswers:
    """ASGI middleware: the answers of paths under `prefix`, with every secret replaced."""

    def __init__(self, app: ASGIApp, secrets: Secrets, prefix: str = "/api/") -> None:
        self._app = app
        self._secrets = secrets
        self._prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answered_here = scope["type"] == "http" and str(scope["path"]).startswith(self._prefix)
        secrets = self._secrets() if answered_here else ()
        if not secrets:
            await self._app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        parts: list[bytes] = []

        async def scrubbed(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            parts.append(message.get("body", b""))
            if message.get("more_body"):
                return
            headers = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
            content_type = dict(headers).get(b"content-type", b"").decode("latin-1")
            body = scrubbed_body(b"".join(parts), content_type, secrets)
            headers.append((b"content-length", str(len(body)).encode()))
            await send(start | {"headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self._app(scope, receive, scrubbed)
