"""Sending one request: Segment rewriting and auth, the allowlist, and httpx.

`Sender.prepare` turns a handler's request into the exact one that goes
out. Credentials stay with their destination: the transform's configured
headers (`Configured`, from `transforms.toml`) are added, unless the handler set
the same header, only to requests for the origin of the transform's configured
`url`; Segment URLs are pointed at the configured endpoint (region, or a local
server) and get `Authorization: Basic base64("<writeKey>:")` unless there is one
already. So a handler that picks another host sends no configured credential
there. Anything bound for a host off the allowlist (`Allowlist`: Segment's, the
endpoint's, DODO_TRANSFORM_ALLOWED_HOSTS, and the host of the transform's own
configured `url`) raises `BlockedDestination` and is never sent; a request that
breaks a rule of the wire (see `wire.py`) raises `FinalDelivery`, as it can
never be sent.

`Sender.send` gives one attempt a deadline for all of it (connecting, sending
and the answer's head), reads at most `EXCERPT_BYTES` of an error's body for the
reason (the rest is never read, however big or slow), and raises
`RetryableDelivery` (network error, deadline, 408, 429, 5xx) or `FinalDelivery`
(any other non-2xx, including redirects, which are never followed, and a
request the HTTP client refuses to send). Credentials an answer echoes are
scrubbed from the reason before anyone sees it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from dodo_transform import __version__
from dodo_transform.errors import BlockedDestination, FinalDelivery, RetryableDelivery
from dodo_transform.outbound.retry import RETRYABLE_STATUS, parse_retry_after
from dodo_transform.outgoing import OutgoingRequest, segment, wire, with_headers
from dodo_transform.outgoing.destination import NOTHING_CONFIGURED, Allowlist, Configured
from dodo_transform.outgoing.redaction import (
    is_credential_header,
    redact_headers,
    scrub,
    secret_parts,
)

# How much of an error's answer is kept for its reason; the rest is never read.
EXCERPT_BYTES = 4096
# How long a delivered request's answer may take to finish arriving for its connection to be
# kept for the next request.
BODY_WAIT_SECONDS = 0.5
REASON_CHARS = 200


USER_AGENT = f"dodo-transform/{__version__}"


class Sender:
    """Prepares and sends requests over one pooled httpx client."""

    def __init__(
        self,
        *,
        segment_base_url: str,
        allowed_hosts: frozenset[str] = frozenset(),
        timeout: float = 15.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.segment_base_url = segment_base_url.rstrip("/")
        self.allowlist = Allowlist(self.segment_base_url, allowed_hosts)
        self._client = httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=False,
            transport=transport,
            # Destinations see who calls them (a handler's own User-Agent header wins). An
            # answer is read as sent, never decompressed: an error's excerpt stays small.
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
            # No cap across destinations: each destination's lane caps its own connections,
            # so one that holds them all cannot leave another waiting for the pool.
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
        )

    def prepare(
        self,
        request: OutgoingRequest,
        write_key: str | None,
        configured: Configured = NOTHING_CONFIGURED,
    ) -> OutgoingRequest:
        """The exact outgoing request; `BlockedDestination` if its host is not allowed,
        `FinalDelivery` if it can never be sent (checked again here for requests stored
        before a rule of the wire existed)."""
        url, headers = self.route(request.url, request.headers, write_key, configured)
        check_payload(request.payload)
        return replace(request, url=url, headers=headers)

    def route(
        self,
        url: str,
        headers: Mapping[str, str],
        write_key: str | None,
        configured: Configured = NOTHING_CONFIGURED,
    ) -> tuple[str, dict[str, str]]:
        """Where a request for `url` with `headers` goes, and with which headers: all of
        `prepare` but the payload's check, so that requests alike (a lane's) share it."""
        problem = wire.url_problem(url) or wire.headers_problem(headers)
        if problem:
            raise FinalDelivery(f"cannot be sent: {problem}")
        # The handler's own header wins, as an endpoint's defaults give way in Svix.
        headers = with_headers(headers, configured.credentials_for(url))
        if segment.is_segment_url(url):
            url = self._to_segment_endpoint(url)
            if write_key and not _has(headers, "authorization"):
                token = base64.b64encode(f"{write_key}:".encode()).decode()
                headers["Authorization"] = f"Basic {token}"
        if not self.allowlist.allows(url, configured.url):
            raise BlockedDestination(self.allowlist.refusal(url))
        if not _has(headers, "content-type"):
            headers["Content-Type"] = "application/json"
        return url, headers

    async def send(
        self, prepared: OutgoingRequest, timeout: float, secrets: Collection[str] = ()
    ) -> int:
        """Send once within `timeout` seconds; return the 2xx status or raise
        `RetryableDelivery`/`FinalDelivery`, whose reason holds none of `secrets` nor the
        request's credentials."""
        try:
            async with asyncio.timeout(timeout):
                status, excerpt, retry_after = await self._exchange(prepared, timeout)
        except TimeoutError:
            raise RetryableDelivery(f"no complete answer within {timeout:g} s") from None
        if 200 <= status < 300:
            return status
        hidden = set(secrets) | _credentials(prepared.headers)
        reason = f"HTTP {status}: {scrub(excerpt, hidden)[:REASON_CHARS]}"
        if status in RETRYABLE_STATUS or status >= 500:
            raise RetryableDelivery(reason, status=status, retry_after=retry_after)
        if 300 <= status < 400:
            reason = f"HTTP {status}: redirects are not followed"
        raise FinalDelivery(reason, status=status)

    async def _exchange(
        self, prepared: OutgoingRequest, timeout: float
    ) -> tuple[int, str, float | None]:
        """The answer's status, the start of its body if it is an error, and Retry-After."""
        try:
            async with self._client.stream(
                prepared.method,
                prepared.url,
                headers=wire.wire_headers(prepared.headers),
                content=prepared.encoded(),
                timeout=timeout,
            ) as response:
                status = response.status_code
                if 200 <= status < 300:
                    await _finish_reading(response)
                    return status, "", None
                excerpt = await _excerpt(response)
                retry_after = parse_retry_after(response.headers.get("Retry-After"), time.time())
                return status, excerpt, retry_after
        except httpx.LocalProtocolError:
            # The client refuses the request itself, so it would refuse it again. Its message
            # may quote a header value, which may be a credential: not repeated.
            raise FinalDelivery(
                "cannot be sent: LocalProtocolError (the HTTP client refused the request)"
            ) from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as error:
            raise FinalDelivery(f"cannot be sent: {type(error).__name__}: {error}") from None
        except httpx.TimeoutException:
            raise RetryableDelivery(f"no complete answer within {timeout:g} s") from None
        except httpx.TransportError as error:
            raise RetryableDelivery(f"{type(error).__name__}: {error or 'no response'}") from None

    def _to_segment_endpoint(self, url: str) -> str:
        parts = urlsplit(url)
        base = urlsplit(self.segment_base_url)
        path = base.path.rstrip("/") + parts.path
        return urlunsplit((base.scheme, base.netloc, path, parts.query, ""))

    async def close(self) -> None:
        await self._client.aclose()


async def _finish_reading(response: httpx.Response) -> None:
    """Read a 2xx answer's body if it is short and comes at once, so that its connection
    serves the next request (an unread body closes it); a long or slow one is left unread,
    for the status already says it was delivered."""
    with contextlib.suppress(TimeoutError, httpx.HTTPError):
        async with asyncio.timeout(BODY_WAIT_SECONDS):
            await _excerpt(response)


async def _excerpt(response: httpx.Response) -> str:
    """At most `EXCERPT_BYTES` of the body, as text; the rest is left unread (closing the
    response drops the connection rather than read a body of any size)."""
    if response.is_stream_consumed:  # read whole already: an in-memory answer (a test double)
        return response.content[:EXCERPT_BYTES].decode("utf-8", "replace")
    kept = b""
    async for chunk in response.aiter_raw():
        kept += chunk
        if len(kept) >= EXCERPT_BYTES:
            break
    return kept[:EXCERPT_BYTES].decode("utf-8", "replace")


def _credentials(headers: Mapping[str, str]) -> set[str]:
    """The credential values a request carries, to keep out of what its answer echoes."""
    return {
        part
        for name, value in headers.items()
        if is_credential_header(name)
        for part in secret_parts(value)
    }


def sent_headers(headers: Mapping[str, str], secrets: Collection[str] = ()) -> dict[str, str]:
    """The headers a request went out with, as stored and shown: credentials' values hidden."""
    return redact_headers(with_headers(headers, {"User-Agent": USER_AGENT}), secrets)


def check_payload(payload: Any) -> None:
    """`FinalDelivery` if `payload` can never be sent (see `wire.payload_problem`)."""
    problem = wire.payload_problem(payload)
    if problem:
        raise FinalDelivery(f"cannot be sent: {problem}")


def _has(headers: dict[str, str], name: str) -> bool:
    return any(key.lower() == name for key in headers)
