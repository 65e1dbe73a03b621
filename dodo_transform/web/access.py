"""Who may use the admin API and the console: a bearer token, else a loopback page of the service.

Without a token the caller's address decides, and behind a reverse proxy on the same host every
caller is loopback. So a request that carries any header a proxy adds is refused: behind a
proxy, the token is required. (Proxy headers are not believed either unless the proxy is named
in `DODO_TRANSFORM_FORWARDED_ALLOW_IPS`; see `web.server`.) A proxy that adds none of them
cannot be told from a local caller: the README says to set the token.

A loopback caller may still be a web page in the operator's own browser, so without a token two
more rules hold:

- the `Host` must be a loopback address or name (`127.0.0.0/8`, `[::1]`, `localhost`), parsed
  as one: a page on a name of its own that re-points that name at 127.0.0.1 (DNS rebinding)
  names its own host, and is refused;
- a request that changes something must come from the service's own pages: a browser names the
  page that sent it in `Origin` (or, failing that, `Referer`), and another site's is refused. A
  request that names no page at all comes from no browser (the CLI, curl) and is served.

With a token set, a cross-site page cannot send the bearer header (it would need CORS, which the
service never allows), and the console's session cookie is SameSite=Strict with a CSRF token.
"""

from __future__ import annotations

import hmac
import ipaddress
from urllib.parse import urlsplit

from fastapi import HTTPException, Request

from dodo_transform.web.context import Context

# Headers proxies add to say for whom they forward (lower case, as Starlette looks them up).
PROXY_HEADERS = (
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-forwarded-server",
    "x-real-ip",
    "x-client-ip",
    "true-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "x-cluster-client-ip",
    "via",
)
# Methods that change nothing (RFC 9110's safe methods): a page on another site may link to them.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


async def admin_guard(request: Request, context: Context) -> None:
    """Bearer token when one is set; otherwise a loopback caller, through no proxy, at a
    loopback host name, and for a change, from the service's own origin (or from no page)."""
    token = context.admin_token
    if token is not None and token.get_secret_value():
        offered = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not secrets_equal(offered, token.get_secret_value()):
            raise HTTPException(401, "admin API: send Authorization: Bearer <token>")
        return
    refuse_proxied(request)
    host = request.client.host if request.client else ""
    if not loopback_address(host):
        raise HTTPException(
            403, "admin API answers only on loopback unless DODO_TRANSFORM_ADMIN_TOKEN is set"
        )
    refuse_foreign_host(request)
    refuse_cross_site(request)


def secrets_equal(offered: str, expected: str) -> bool:
    """Compare in constant time, whatever the lengths (digests of equal size are compared)."""
    return hmac.compare_digest(_digest(offered), _digest(expected))


def _digest(text: str) -> bytes:
    return hmac.digest(b"dodo-transform", text.encode(), "sha256")


def refuse_proxied(request: Request) -> None:
    proxied = next((name for name in PROXY_HEADERS if name in request.headers), None)
    if proxied is not None:
        raise HTTPException(
            403,
            f"admin API: this request came through a proxy (it carries {proxied}); behind a"
            " proxy the admin API needs a token: set DODO_TRANSFORM_ADMIN_TOKEN and send"
            " Authorization: Bearer <token>",
        )


def refuse_foreign_host(request: Request) -> None:
    """403 unless the Host header names a loopback address or `localhost`."""
    host = request.headers.get("host", "")
    if not loopback_host(host):
        raise HTTPException(
            403,
            f"the Host {host[:80]!r} is not a loopback name: without DODO_TRANSFORM_ADMIN_TOKEN"
            " the admin API and the console answer only at 127.0.0.1, [::1] or localhost",
        )


def refuse_cross_site(request: Request) -> None:
    """403 for a change asked for by a page of another origin (see the module's docstring)."""
    if request.method in SAFE_METHODS:
        return
    sender = page_origin(request)
    if sender is not None and not same_origin(sender, request):
        raise HTTPException(
            403,
            f"cross-site request refused: it was sent by a page of {sender[:80]}, not by this"
            " service's own pages",
        )


def page_origin(request: Request) -> str | None:
    """The origin of the page that sent the request, as the browser names it (`Origin`, else
    `Referer`); None when it names none, as clients that are no browser do."""
    origin = request.headers.get("origin")
    if origin is not None:
        return origin.strip()
    referer = request.headers.get("referer")
    if referer is None:
        return None
    parts = urlsplit(referer.strip())
    return f"{parts.scheme}://{parts.netloc}"


def same_origin(origin: str, request: Request) -> bool:
    """Whether `origin` is the host and port the request was sent to (its Host header).

    The scheme is left out: behind a proxy that terminates TLS and is not named in
    DODO_TRANSFORM_FORWARDED_ALLOW_IPS the service sees http where the browser used https.
    """
    sent_to = _host_port(request.headers.get("host", ""), request.url.scheme)
    try:
        parts = urlsplit(origin)
        named = (parts.hostname or "", parts.port or _DEFAULT_PORTS.get(parts.scheme, 0))
    except ValueError:  # a port that is no number
        return False
    return sent_to is not None and named == sent_to


def _host_port(host: str, scheme: str) -> tuple[str, int] | None:
    try:
        parts = urlsplit(f"//{host}")
        return (parts.hostname or "", parts.port or _DEFAULT_PORTS.get(scheme, 0))
    except ValueError:
        return None


def loopback_host(host: str) -> bool:
    """Whether a Host header names this machine by a loopback address or `localhost`, with or
    without a port: `127.0.0.1:8000`, `[::1]`, `localhost`; never `127.attacker.example`."""
    host = host.strip().lower()
    if host.startswith("["):  # an IPv6 address, in brackets as a Host names one
        address, bracket, port = host[1:].partition("]")
        if not bracket or (port and not (port.startswith(":") and _port(port[1:]))):
            return False
        return _loopback_ip(address, ipaddress.IPv6Address)
    name, colon, port = host.partition(":")
    if colon and not _port(port):
        return False
    return name == "localhost" or _loopback_ip(name, ipaddress.IPv4Address)


def _loopback_ip(
    text: str, kind: type[ipaddress.IPv4Address] | type[ipaddress.IPv6Address]
) -> bool:
    try:
        return kind(text).is_loopback
    except ValueError:
        return False


def _port(text: str) -> bool:
    return text.isascii() and text.isdigit() and int(text) <= 65535


def loopback_address(address: str) -> bool:
    """Whether `address` is a loopback IP address (127.0.0.0/8, ::1), or `localhost`."""
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"
