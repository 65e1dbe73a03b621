"""Secrets never leave through the web edge: every admin API answer is scrubbed on its way out.

The API shows stored requests, errors, console output and settings, and any of them may hold
a secret the service knows: a header credential from transforms.toml, a write key, a webhook
URL read from `${NAME}` (its path is its token), a value a handler copied from `env` into a
payload, or an error in which a destination echoed a credential. Each is redacted where it is
stored or built already; this is the last net, on the answer's bytes, so a field added
tomorrow cannot leak one. The console's pages do the same when they render (see
`console/rendering.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dodo_transform.outgoing import scrub, written_forms

Secrets = Callable[[], Collection[str]]


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
        hidden = written_forms(secrets)
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
            body = scrub(b"".join(parts).decode("utf-8", "surrogateescape"), hidden)
            encoded = body.encode("utf-8", "surrogateescape")
            headers = [
                (name, value)
                for name, value in start.get("headers", [])
                if name != b"content-length"
            ]
            headers.append((b"content-length", str(len(encoded)).encode()))
            await send(start | {"headers": headers})
            await send({"type": "http.response.body", "body": encoded})

        await self._app(scope, receive, scrubbed)
