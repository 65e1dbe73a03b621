"""The delivery stage: due deliveries -> the dispatcher -> stored results.

Claims due deliveries with a lease, waits briefly to fill a Segment batch,
hands them to the `Dispatcher` (batches, retries, rate limits) and stores
every result in one transaction: `delivered`, `pending` for a retry, `dead`,
`blocked` or `dry_run`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from dodo_transform.alerts import Alerter
from dodo_transform.metrics import PipelineMetrics
from dodo_transform.outbound import batching, segment
from dodo_transform.outbound.dispatcher import Dispatcher, Result
from dodo_transform.pipeline.transform_stage import StoreCall
from dodo_transform.store import Delivery, DeliveryStatus, Store

log = logging.getLogger("dodo_transform.pipeline")
CLAIM_LIMIT = 2000
FLUSH_SECONDS = 0.25


class DeliveryStage:
    def __init__(
        self,
        *,
        store: Store,
        dispatcher: Dispatcher,
        metrics: PipelineMetrics,
        store_call: StoreCall,
        lease_seconds: float,
        batch_size: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.dispatcher = dispatcher
        self.metrics = metrics
        self._store = store_call
        self._lease = lease_seconds
        self._batching = batch_size > 1
        self._clock = clock
        self.sending: set[int] = set()  # claimed and not yet recorded: released on stop
        self.alerts: Alerter | None = None

    async def step(self) -> bool:
        """Send one round of due deliveries; False when none was due."""
        due: list[Delivery] = await self._store(
            self.store.claim_deliveries, CLAIM_LIMIT, self._lease
        )
        if not due:
            return False
        waited = self._clock() - min(max(d.created_at, d.next_attempt_at) for d in due)
        if self._batching and len(due) < batching.MAX_BATCH_MESSAGES and waited < FLUSH_SECONDS:
            # Like Segment's SDKs: send a full batch now, or whatever is due once the oldest
            # message has waited FLUSH_SECONDS, so a burst goes out in few requests.
            await asyncio.sleep(FLUSH_SECONDS - waited)
            due += await self._store(
                self.store.claim_deliveries, CLAIM_LIMIT - len(due), self._lease
            )
        self.sending.update(d.id for d in due)
        try:
            results = await self.dispatcher.dispatch(due)
            await self._store(self.store.record_results, [r.update() for r in results])
        finally:
            self.sending.difference_update(d.id for d in due)
        for result in results:
            self._account(result)
        return True

    def _account(self, result: Result) -> None:
        delivery, status, attempt = result.delivery, result.status, result.attempt
        if status is DeliveryStatus.DELIVERED:
            self.metrics.delivered.labels(delivery.transform).inc()
            self.metrics.latency.observe(max(0.0, self._clock() - delivery.received_at))
        elif status is DeliveryStatus.PENDING:
            if attempt is not None:
                self.metrics.retried.labels(delivery.transform).inc()
        else:
            self.metrics.finished.labels(delivery.transform, status.value).inc()
        retrying = status is DeliveryStatus.PENDING and attempt is not None
        fields: dict[str, Any] = {
            "webhook_id": delivery.webhook_id,
            "transform": delivery.transform,
            "delivery_id": delivery.id,
            "status": "retrying" if retrying else status.value,
        }
        if result.error:
            fields["error"] = result.error
        if attempt is not None:
            fields |= {
                "http_status": attempt.status_code,
                "duration_ms": round(attempt.duration_ms, 1),
            }
        if status is DeliveryStatus.DEAD and self.alerts is not None:
            self.alerts.raise_alert(
                "dead",
                delivery.transform,
                f"deliveries of transform {delivery.transform} are going dead: {result.error}."
                " See `dodo-transform deliveries --status dead`; replay them once fixed.",
            )
        if attempt is not None and attempt.status_code in (401, 403):
            # Every message of this transform will fail the same way: say what to fix.
            fix = _credentials_fix(delivery)
            if self.alerts is not None:
                self.alerts.raise_alert(
                    "credentials",
                    delivery.transform,
                    f"the destination refused transform {delivery.transform}'s credentials"
                    f" (HTTP {attempt.status_code}): {fix}",
                )
            log.error(
                f"the destination refused the credentials of transform {delivery.transform}: {fix}",
                extra=fields,
            )
            return
        log.info("delivery attempt", extra=fields)


def _credentials_fix(delivery: Delivery) -> str:
    """What to check when a destination refuses a transform's credentials: Segment's are the
    write key; another destination's are the headers the transform sends."""
    if delivery.request is not None and segment.is_segment_url(delivery.request.url):
        return "check its write key (write_key in transforms.toml, else SEGMENT_WRITE_KEY)"
    return (
        "check the credentials it sends (its headers in transforms.toml, and the environment"
        " variables they name, or the headers its handler sets)"
    )
