"""When to try a delivery again: which answers are worth a retry, and how long to wait.

Capped exponential backoff with jitter, or the destination's `Retry-After`,
within Segment's 24 h messageId dedup window so a retry is never counted twice.
"""

from __future__ import annotations

import email.utils
import random

from dodo_transform.outgoing.destination import DeliveryPolicy

RETRYABLE_STATUS = frozenset({408, 429})  # besides every 5xx
# Capped exponential backoff: 5 s, 15 s, 45 s, ... up to 4 h between tries. With the jitter
# below, the last of MAX_ATTEMPTS tries falls within ~18 h of the first, inside Segment's
# 24 h messageId dedup window, so a retry is never counted twice.
BACKOFF_BASE_SECONDS = 5.0
BACKOFF_FACTOR = 3.0
BACKOFF_CAP_SECONDS = 4 * 3600.0
MAX_ATTEMPTS = 12
RETRY_WINDOW_SECONDS = 23 * 3600.0
MAX_RETRY_AFTER_SECONDS = 3600.0


def backoff(
    attempts: int,
    rng: random.Random,
    retry_after: float | None = None,
    base: float = BACKOFF_BASE_SECONDS,
) -> float:
    """Seconds to wait after `attempts` failed tries: jittered exponential, or `Retry-After`."""
    delay = min(BACKOFF_CAP_SECONDS, base * BACKOFF_FACTOR ** max(attempts - 1, 0))
    delay *= rng.uniform(0.5, 1.0)  # jitter spreads a recovering destination's load
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER_SECONDS))
    return delay


def retry_delay(
    attempts: int,
    policy: DeliveryPolicy,
    rng: random.Random,
    retry_after: float | None = None,
    base: float = BACKOFF_BASE_SECONDS,
) -> float:
    """Seconds to wait after `attempts` failed tries under `policy`: its `retry_schedule` (the
    last delay repeating), else `backoff`; never sooner than the destination's `Retry-After`."""
    if not policy.retry_schedule:
        return backoff(attempts, rng, retry_after, base)
    delay = policy.retry_schedule[min(attempts, len(policy.retry_schedule)) - 1]
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER_SECONDS))
    return delay


def parse_retry_after(value: str | None, now: float) -> float | None:
    """`Retry-After` as seconds from now: either delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError, IndexError):
        return None
