"""What a destination is: an origin requests go to, which credentials go there, and how.

A destination is named by its origin, `scheme://host[:port]` (`destination_of`): what the
store keeps with each delivery, the API and the metrics show, and the allowlist and the
credential rule (`credentials_go_to`) compare. `DeliveryPolicy` is how one transform's
requests are delivered to one (its `transforms.toml` settings over the service's defaults).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_SECONDS_PER_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


@lru_cache(maxsize=1024)
def destination_of(url: str) -> str:
    """The origin a request to `url` goes to, `scheme://host[:port]` (the port only when it
    is not the scheme's default): what names a destination in the store, the API and the
    metrics. Never the user part of a URL, which may hold a password; "" for no URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ""
    host = parts.hostname or ""
    if not host:
        return ""
    scheme = parts.scheme.lower()
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address
    default = {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != default else "")


def credentials_go_to(url: str, configured_url: str) -> bool:
    """Whether a request to `url` carries the credentials configured for `configured_url`:
    only one to the same destination (origin) does, never one a handler points elsewhere."""
    return bool(configured_url) and destination_of(url) == destination_of(configured_url)


def duration_seconds(text: str) -> float | None:
    """`"10s"`, `"1m"`, `"1.5h"` ... in seconds; None if `text` is not such a duration."""
    found = _DURATION.fullmatch(text.strip())
    if found is None:
        return None
    return float(found[1]) * _SECONDS_PER_UNIT[found[2]]


@dataclass(frozen=True)
class DeliveryPolicy:
    """How one transform's requests are delivered to a destination: the deadline of one
    attempt (connect, send and the whole answer), how many attempts and when, and the pace
    (requests per second, None: no limit of its own) and requests in flight at once."""

    timeout: float = 15.0
    max_attempts: int = 12
    retry_schedule: tuple[float, ...] = ()  # empty: capped exponential backoff with jitter
    rate: float | None = None
    concurrency: int = 16
