"""What a destination is: an origin requests go to, whether they may, which credentials go
there, and how.

A destination is named by its origin, `scheme://host[:port]` (`destination_of`): what the
store keeps with each delivery, the API and the metrics show. `Allowlist` says which ones
requests may go to; `Configured` what a transform's `transforms.toml` table adds to them,
its credentials going only to its `url`'s destination (`credentials_go_to`).
`DeliveryPolicy` is how one transform's requests are delivered to one (its settings over
the service's defaults), and `PausedDestination` one its circuit breaker holds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from dodo_transform.outgoing.segment import SEGMENT_HOSTS

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


@dataclass(frozen=True)
class Configured:
    """What `transforms.toml` says about where one transform's requests go and with what:
    headers added to those for its `url`'s destination (credentials: never shown), that
    `url`, whose host it may send to without DODO_TRANSFORM_ALLOWED_HOSTS, and every secret
    value of its table, never to be shown."""

    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    url: str = ""
    secrets: frozenset[str] = frozenset()

    def credentials_for(self, url: str) -> Mapping[str, str]:
        """The configured headers a request to `url` carries: all of them to the configured
        url's destination, none elsewhere."""
        if credentials_go_to(url, self.url):
            return self.headers
        return MappingProxyType({})


NOTHING_CONFIGURED = Configured()


class Allowlist:
    """The hosts requests may go to: Segment's, the Segment endpoint's, the extra ones listed
    (on http and https), and per transform the host of its configured `url`."""

    def __init__(self, segment_base_url: str, allowed_hosts: frozenset[str] = frozenset()) -> None:
        endpoint = urlsplit(segment_base_url)
        self._allowed = (
            {_netloc(host, "https") for host in SEGMENT_HOSTS}
            | {_netloc(endpoint.netloc, endpoint.scheme)}
            | {_netloc(host, "https") for host in allowed_hosts}
            | {_netloc(host, "http") for host in allowed_hosts}
        )

    def allows(self, url: str, configured_url: str = "") -> bool:
        destination = _netloc_of(url)
        return destination in self._allowed or (
            bool(configured_url) and destination == _netloc_of(configured_url)
        )

    def refusal(self, url: str) -> str:
        """Why a request to `url` is blocked, and what to do."""
        return (
            f"{urlsplit(url).hostname or url!r} is not an allowed destination: add it to "
            "DODO_TRANSFORM_ALLOWED_HOSTS, or set the transform's url in transforms.toml, "
            "to send there"
        )


@dataclass(frozen=True)
class PausedDestination:
    """A lane whose destination keeps failing, paused by its circuit breaker: what `status`,
    `/api/status`, the console and the worker's heartbeat show."""

    transform: str
    destination: str
    since: float
    last_error: str | None
    waiting: int  # pending deliveries of the lane, counted when it paused or was last probed
    next_probe_at: float

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PausedDestination:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})


def _netloc_of(url: str) -> str:
    parts = urlsplit(url)
    return _netloc(parts.netloc, parts.scheme)


def _netloc(netloc: str, scheme: str) -> str:
    """`host:port` with the scheme's default port filled in, lower-cased."""
    host, _, port = netloc.lower().rpartition(":") if ":" in netloc else (netloc.lower(), "", "")
    if not port.isdigit():
        host, port = netloc.lower(), ""
    return f"{host}:{port or ('443' if scheme == 'https' else '80')}"
