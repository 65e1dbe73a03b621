"""Dispatching a group of due deliveries: Segment calls in batches, everything else one by one.

`Dispatcher.dispatch` takes deliveries of one lane (a transform's requests to one
destination, see `outbound/lanes.py`) with the lane's `DeliveryPolicy`, and returns
one `Result` per delivery; it never touches the store. Segment calls for the same
endpoint and write key are coalesced into `/v1/batch` requests. A batch that
Segment refuses with 400 is split in halves until the bad message is alone:
only that one is `dead`. A 429 pauses that destination until `Retry-After`,
and the rest of the group for it waits without spending an attempt. Each
attempt has the policy's deadline; a failed one is retried on the policy's
schedule until its attempts are spent.

Whatever goes wrong with one delivery is that delivery's result: a request
that cannot be prepared, encoded or sent is `dead` with the reason (it would
fail the same way every time), and `dispatch` itself never raises, so one
stored request cannot stop a round, nor every round after a restart.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from dodo_transform.errors import (
    BlockedDestination,
    DeliveryError,
    FinalDelivery,
    RetryableDelivery,
)
from dodo_transform.outbound import batching
from dodo_transform.outbound.ratelimit import RateLimiter
from dodo_transform.outbound.retry import RETRY_WINDOW_SECONDS, retry_delay
from dodo_transform.outbound.sender import Sender, check_payload, sent_headers
from dodo_transform.outgoing import OutgoingRequest, encode_json, segment
from dodo_transform.outgoing.destination import NOTHING_CONFIGURED, Configured, DeliveryPolicy
from dodo_transform.store import Attempt, Delivery, DeliveryStatus, DeliveryUpdate

log = logging.getLogger("dodo_transform.outbound")


@dataclass(frozen=True)
class Result:
    """What became of one delivery in this round."""

    delivery: Delivery
    status: DeliveryStatus  # delivered | pending (retry later) | dead | blocked | dry_run
    attempt: Attempt | None = None
    error: str | None = None
    next_attempt_at: float = 0.0
    request: OutgoingRequest | None = None  # the exact request, kept for dry runs
    sent_headers: dict[str, str] | None = None  # what the attempt sent, credentials hidden
    # The attempt failed for the destination's sake, not the message's: no answer in time, no
    # connection, a 5xx or a 408 (a 429 is the destination's pace, handled apart).
    destination_failed: bool = False

    def update(self, claim: int | None = None) -> DeliveryUpdate:
        """The result as stored, under `claim` (default: the claim it was taken under)."""
        return DeliveryUpdate(
            self.delivery.id,
            self.status,
            self.attempt,
            self.error,
            self.next_attempt_at,
            self.request,
            claim=(claim or self.delivery.claim) or None,
            sent_headers=self.sent_headers,
        )


@dataclass(frozen=True)
class _Message:
    delivery: Delivery
    encoded: bytes


@dataclass(frozen=True)
class _Batch:
    kind: str  # the Segment call its messages are
    url: str  # of the /v1/batch call they go in
    auth: str


@dataclass(frozen=True)
class _Route:
    """Where requests alike (same transform, url and headers) go, and how."""

    url: str
    headers: Mapping[str, str]
    batch: _Batch | None  # None: each is sent alone


@dataclass(frozen=True)
class _Single:
    delivery: Delivery
    prepared: OutgoingRequest


class Dispatcher:
    def __init__(
        self,
        sender: Sender,
        *,
        write_key_for: Callable[[str], str | None],
        limiter: RateLimiter,
        configured_for: Callable[[str], Configured] = lambda transform: NOTHING_CONFIGURED,
        dry_run: bool,
        retry_base_seconds: float = 5.0,
        batch_size: int = batching.MAX_BATCH_MESSAGES,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.sender = sender
        self._write_key_for = write_key_for
        self._configured_for = configured_for
        self.limiter = limiter
        self._dry_run = dry_run
        self._retry_base = retry_base_seconds
        self._batch_size = batch_size
        self._clock = clock
        self._rng = rng or random.Random()

    async def dispatch(
        self, due: Sequence[Delivery], policy: DeliveryPolicy | None = None
    ) -> list[Result]:
        """Send `due` (deliveries of one transform) under `policy`; a `Result` for each."""
        policy = policy or DeliveryPolicy()
        results: list[Result] = []
        batches: dict[tuple[str, str], list[_Message]] = defaultdict(list)
        singles: list[_Single] = []
        configured = {name: self._configured_for(name) for name in {d.transform for d in due}}
        routes: dict[tuple[object, ...], _Route] = {}
        for delivery in due:
            try:
                planned = self._plan(delivery, configured[delivery.transform], routes)
            except BlockedDestination as error:
                results.append(Result(delivery, DeliveryStatus.BLOCKED, error=str(error)))
            except Exception as error:
                results.append(Result(delivery, DeliveryStatus.DEAD, error=_unsendable(error)))
            else:
                if isinstance(planned, _Single):
                    singles.append(planned)
                else:
                    key, message = planned
                    batches[key].append(message)
        sent = await asyncio.gather(
            *(
                self._send_group(url, auth, messages, policy, configured)
                for (url, auth), messages in batches.items()
            ),
            *(self._send_single(single, policy, configured) for single in singles),
        )
        for group in sent:
            results.extend(group)
        return results

    def _plan(
        self, delivery: Delivery, configured: Configured, routes: dict[tuple[object, ...], _Route]
    ) -> _Single | tuple[tuple[str, str], _Message]:
        """The prepared request to send alone, or the batch (url, auth) and message it joins.
        `routes` keeps what requests alike share (worked out once per group)."""
        request = delivery.request
        if request is None:
            raise FinalDelivery("the stored delivery has no request")
        key = (delivery.transform, request.url, *request.headers.items())
        route = routes.get(key)
        if route is None:
            route = routes[key] = self._route(delivery.transform, request, configured)
        check_payload(request.payload)
        if route.batch is None or not isinstance(request.payload, dict):
            prepared = replace(request, url=route.url, headers=dict(route.headers))
            return _Single(delivery, prepared)
        message = batching.enrich(request.payload, route.batch.kind, _message_id(delivery))
        return (route.batch.url, route.batch.auth), _Message(delivery, encode_json(message))

    def _route(self, transform: str, request: OutgoingRequest, configured: Configured) -> _Route:
        url, headers = self.sender.route(
            request.url, request.headers, self._write_key_for(transform), configured
        )
        kind = batching.batch_call(request.url)
        if kind is None:
            return _Route(url, headers, None)
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        return _Route(url, headers, _Batch(kind, url.rsplit("/v1/", 1)[0] + "/v1/batch", auth))

    # --- Segment batches ----------------------------------------------------------------------

    async def _send_group(
        self,
        url: str,
        auth: str,
        messages: list[_Message],
        policy: DeliveryPolicy,
        configured: Mapping[str, Configured],
    ) -> list[Result]:
        results: list[Result] = []
        key = f"{url} {auth}"
        items = [(m.delivery, m.encoded) for m in messages]
        for batch in batching.pack(items, self._batch_size):
            paused = self.limiter.paused_for(key)
            if paused > 0:  # a 429 earlier: wait, without spending an attempt
                later = self._clock() + paused
                results.extend(
                    Result(d, DeliveryStatus.PENDING, next_attempt_at=later) for d, _ in batch
                )
                continue
            results.extend(await self._send_batch(url, auth, key, batch, policy, configured))
        return results

    async def _send_batch(
        self,
        url: str,
        auth: str,
        key: str,
        batch: list[tuple[Delivery, bytes]],
        policy: DeliveryPolicy,
        configured: Mapping[str, Configured],
    ) -> list[Result]:
        deliveries = [delivery for delivery, _ in batch]
        body = batching.batch_body([encoded for _, encoded in batch], _now_iso())
        headers = {"Content-Type": "application/json"} | ({"Authorization": auth} if auth else {})
        if self._dry_run and not auth:
            # Each delivery keeps the batch call with its own message only: its record shows
            # what was made of its event, not 249 other customers' messages.
            sent = json.loads(body)
            return [
                Result(
                    d,
                    DeliveryStatus.DRY_RUN,
                    request=OutgoingRequest("POST", url, headers, {**sent, "batch": [message]}),
                )
                for d, message in zip(deliveries, sent["batch"], strict=True)
            ]
        prepared = OutgoingRequest("POST", url, headers, None, body=body)
        secrets = configured[deliveries[0].transform].secrets
        await self.limiter.acquire(key)
        attempt, error = await self._attempt(prepared, policy, secrets)
        if isinstance(error, RetryableDelivery) and error.status == 429:
            self.limiter.pause(key, error.retry_after or 1.0)
        if isinstance(error, FinalDelivery) and error.status == 400 and len(batch) > 1:
            middle = len(batch) // 2  # find the message Segment refuses
            first = await self._send_batch(url, auth, key, batch[:middle], policy, configured)
            rest = await self._send_batch(url, auth, key, batch[middle:], policy, configured)
            return first + rest
        return self._settle(deliveries, attempt, error, policy, sent_headers(headers, secrets))

    # --- other destinations -------------------------------------------------------------------

    async def _send_single(
        self, single: _Single, policy: DeliveryPolicy, configured: Mapping[str, Configured]
    ) -> list[Result]:
        delivery, prepared = single.delivery, single.prepared
        if self._dry_run and _keyless_segment_call(delivery, prepared):
            return [Result(delivery, DeliveryStatus.DRY_RUN, request=prepared)]
        secrets = configured[delivery.transform].secrets
        attempt, error = await self._attempt(prepared, policy, secrets)
        shown = sent_headers(prepared.headers, secrets)
        return self._settle([delivery], attempt, error, policy, shown)

    # --- sending and its outcome --------------------------------------------------------------

    async def _attempt(
        self, prepared: OutgoingRequest, policy: DeliveryPolicy, secrets: frozenset[str]
    ) -> tuple[Attempt, DeliveryError | None]:
        """Send once; the attempt as stored, and the error if it failed."""
        at, started = self._clock(), time.monotonic()
        try:
            status = await self.sender.send(prepared, policy.timeout, secrets)
        except DeliveryError as error:
            return Attempt(at, error.status, str(error), _ms_since(started)), error
        except Exception as error:
            final = FinalDelivery(_unsendable(error))
            return Attempt(at, None, str(final), _ms_since(started)), final
        return Attempt(at, status, None, _ms_since(started)), None

    def _settle(
        self,
        deliveries: Sequence[Delivery],
        attempt: Attempt,
        error: DeliveryError | None,
        policy: DeliveryPolicy,
        shown: dict[str, str],
    ) -> list[Result]:
        if error is None:
            return [
                Result(d, DeliveryStatus.DELIVERED, attempt, sent_headers=shown) for d in deliveries
            ]
        if isinstance(error, RetryableDelivery):
            return self._retry_all(deliveries, attempt, error.retry_after, policy, shown)
        return [
            Result(d, DeliveryStatus.DEAD, attempt, str(error), sent_headers=shown)
            for d in deliveries
        ]

    def _retry_all(
        self,
        deliveries: Sequence[Delivery],
        attempt: Attempt,
        retry_after: float | None,
        policy: DeliveryPolicy,
        shown: dict[str, str],
    ) -> list[Result]:
        """Schedule one shared retry for messages that failed together, so they stay together."""
        failed = attempt.status_code != 429
        tries = max(d.attempts for d in deliveries) + 1
        delay = retry_delay(tries, policy, self._rng, retry_after, base=self._retry_base)
        next_at = self._clock() + delay
        results = []
        for delivery in deliveries:
            tried = delivery.attempts + 1
            status, error, due = DeliveryStatus.PENDING, attempt.error, next_at
            if tried >= policy.max_attempts or next_at > delivery.created_at + RETRY_WINDOW_SECONDS:
                status, error, due = DeliveryStatus.DEAD, f"gave up after {tried} tries: {error}", 0
            results.append(
                Result(
                    delivery,
                    status,
                    attempt,
                    error,
                    due,
                    sent_headers=shown,
                    destination_failed=failed,
                )
            )
        return results


def _unsendable(error: Exception) -> str:
    """A failure that is no `DeliveryError`: final, since the same request fails alike."""
    if isinstance(error, DeliveryError):
        return str(error)
    if not isinstance(error, ValueError | RecursionError):
        log.error("unexpected error preparing or sending a request", exc_info=error)
    return f"cannot be sent: {type(error).__name__}: {error}"


def _keyless_segment_call(delivery: Delivery, prepared: OutgoingRequest) -> bool:
    """A Segment call with no write key to send it with: what a dry run records. Other
    destinations carry their own credentials (transforms.toml `headers`) and are sent."""
    assert delivery.request is not None
    has_auth = any(name.lower() == "authorization" for name in prepared.headers)
    return segment.is_segment_url(delivery.request.url) and not has_auth


def _message_id(delivery: Delivery) -> str:
    return batching.message_id(
        delivery.webhook_id, delivery.transform, delivery.version, delivery.index
    )


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ms_since(started: float) -> float:
    return (time.monotonic() - started) * 1000
