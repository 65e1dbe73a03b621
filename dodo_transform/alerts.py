"""Alerts: one JSON message to `DODO_TRANSFORM_ALERT_URL` when something needs a person.

Raised in the worker, where the pipeline notices: a transform that no longer loads or
is quarantined, deliveries that went `dead`, a destination refusing the credentials.
The message is `{"text": ...}`, the shape Slack's incoming webhooks (and Discord's
`/slack` endpoint, Mattermost, Teams' workflows) accept. Each alert has a key (kind
and subject); the same key is sent at most once per `REPEAT_SECONDS`, and all alerts
together at most `BURST` per minute, so a broken handler on a busy day is one message,
not thousands. Sending never blocks the pipeline and never fails it: a message that
cannot be sent is logged and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Collection

import httpx
from prometheus_client import CollectorRegistry, Counter

from dodo_transform.outgoing.redaction import scrub

log = logging.getLogger("dodo_transform.alerts")
REPEAT_SECONDS = 3600.0
BURST = 10
QUEUE_LIMIT = 100


class Alerter:
    def __init__(
        self,
        url: str,
        *,
        registry: CollectorRegistry,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        secrets: Callable[[], Collection[str]] = frozenset,
    ) -> None:
        """`secrets()`: what never goes into an alert (an error may quote a credential)."""
        self._url = url
        self._secrets = secrets
        self._client = httpx.AsyncClient(timeout=10, transport=transport)
        self._clock = clock
        self._last_sent: dict[tuple[str, str], float] = {}
        self._recent: deque[float] = deque()
        self._queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue(QUEUE_LIMIT)
        self._task: asyncio.Task[None] | None = None
        self.sent = Counter(
            "dodo_alerts_sent",
            "Alerts sent to DODO_TRANSFORM_ALERT_URL.",
            ["kind"],
            registry=registry,
        )
        self.suppressed = Counter(
            "dodo_alerts_suppressed",
            "Alerts not sent: repeated within the hour, over the rate, or failed to send.",
            ["kind"],
            registry=registry,
        )

    def raise_alert(self, kind: str, subject: str, text: str) -> None:
        """Queue an alert unless the same one went out within `REPEAT_SECONDS`."""
        now = self._clock()
        key = (kind, subject)
        last = self._last_sent.get(key)
        if last is not None and now - last < REPEAT_SECONDS:
            self.suppressed.labels(kind).inc()
            return
        while self._recent and now - self._recent[0] > 60:
            self._recent.popleft()
        if len(self._recent) >= BURST:
            self.suppressed.labels(kind).inc()
            return
        self._last_sent[key] = now
        self._recent.append(now)
        try:
            self._queue.put_nowait((kind, f"dodo-transform: {scrub(text, self._secrets())}"))
        except asyncio.QueueFull:
            self.suppressed.labels(kind).inc()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._send_forever(), name="alerts")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._client.aclose()

    async def _send_forever(self) -> None:
        while True:
            kind, text = await self._queue.get()
            try:
                response = await self._client.post(self._url, json={"text": text})
                error = None if response.is_success else f"HTTP {response.status_code}"
            except httpx.HTTPError as failure:
                error = type(failure).__name__
            if error is None:
                self.sent.labels(kind).inc()
                continue
            # The URL may hold a token (Slack's do): name the setting, not the address.
            log.warning(
                "alert not sent: check DODO_TRANSFORM_ALERT_URL",
                extra={"kind": kind, "error": error},
            )
            self.suppressed.labels(kind).inc()
