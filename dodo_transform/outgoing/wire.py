"""What an outgoing request must be to go on the wire: the one place these rules live.

`problem(request)` names the first thing that keeps a request from ever being sent as
asked, or None. The engine asks when a handler returns a request (so `dodo-transform test`
and the stored `failed` outcome name the file), and the sender asks again before every send,
for requests stored before a rule existed. A request with a problem is final: no retry can
fix it.

Decisions, and why:
- Header names are RFC 7230 tokens; values hold no control characters (CR, LF and NUL
  would split or end the header) and are trimmed of surrounding blanks, as fetch does.
- Non-ASCII header values are sent as Latin-1 bytes (`X-Customer-Name: José` goes out as
  `Jos\\xe9`), as fetch, Node and Python's http.client all do: HTTP allows those bytes and a
  handler written for fetch expects them. A character beyond Latin-1 has no byte at all,
  so such a value is refused, with what to do, rather than silently changed.
- Framing and hop-by-hop headers (`Content-Length`, `Transfer-Encoding`, `Host`,
  `Connection`, ...) belong to the HTTP client: a handler's own value would contradict the
  body actually sent or, for `Host`, address another site than the allowlist checked. They
  are refused, not dropped, so the handler's author learns of it.
- URLs hold no control characters, blanks or lone surrogates, and a port in range.
- Payloads nest at most `MAX_PAYLOAD_DEPTH` levels: deeper ones cannot be encoded, stored
  and shown reliably (Python's JSON recursion), and no real message is anywhere near.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from dodo_transform.outgoing.request import OutgoingRequest

MAX_PAYLOAD_DEPTH = 512
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Control characters but HTAB, DEL, and the C1 controls.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_URL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f-\x9f\ud800-\udfff]")
_BLANKS = " \t"
_CONTAINERS = (dict, list)  # exactly these: the types JSON decodes to
CLIENT_HEADERS = frozenset(
    {
        "content-length",
        "transfer-encoding",
        "host",
        "connection",
        "upgrade",
        "te",
        "trailer",
        "keep-alive",
        "expect",
    }
)


def problem(request: OutgoingRequest) -> str | None:
    """Why `request` can never be sent as asked, or None when it can."""
    return (
        url_problem(request.url)
        or headers_problem(request.headers)
        or payload_problem(request.payload)
    )


def url_problem(url: str) -> str | None:
    found = _URL_FORBIDDEN.search(url)
    if found:
        return f"url {url!r} holds {_describe(found.group())}, which a URL cannot carry"
    try:
        _ = urlsplit(url).port  # raises for a port out of range or not a number
    except ValueError as error:
        return f"url {url!r} is not usable: {error}"
    return None


def headers_problem(headers: Mapping[str, str]) -> str | None:
    for name, value in headers.items():
        found = header_problem(name, value)
        if found:
            return found
    return None


def header_problem(name: str, value: str) -> str | None:
    if not TOKEN.fullmatch(name):
        return (
            f"header name {name!r} is not a valid HTTP header name "
            "(letters, digits and !#$%&'*+-.^_`|~ only)"
        )
    lowered = name.lower()
    if lowered in CLIENT_HEADERS or lowered.startswith("proxy-"):
        return f"header {name!r} is set by the HTTP client, not by a handler: remove it"
    found = _CONTROL.search(value)
    if found:
        return f"header {name!r} holds {_describe(found.group())}, which a header cannot carry"
    try:
        value.encode("latin-1")
    except UnicodeEncodeError as error:
        character = value[error.start]
        return (
            f"header {name!r} holds {_describe(character)}, beyond Latin-1, which a header "
            "cannot carry: percent-encode or base64 the value in the handler"
        )
    return None


def wire_headers(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    """Headers as the bytes that go out (see the module docstring); checked first."""
    return [
        (name.encode("ascii"), value.strip(_BLANKS).encode("latin-1"))
        for name, value in headers.items()
    ]


def payload_problem(payload: Any) -> str | None:
    if nesting_depth(payload, MAX_PAYLOAD_DEPTH) > MAX_PAYLOAD_DEPTH:
        return f"payload is nested more than {MAX_PAYLOAD_DEPTH} levels deep"
    return None


def nesting_depth(value: Any, stop_after: int) -> int:
    """How deeply arrays and objects nest in the JSON value `value` (0 for a scalar), counted
    level by level without recursion; the count stops once it passes `stop_after`."""
    level = [value] if type(value) in _CONTAINERS else []
    depth = 0
    while level and depth <= stop_after:
        depth += 1
        below: list[Any] = []
        for item in level:
            children = item.values() if type(item) is dict else item
            below += [child for child in children if type(child) in _CONTAINERS]
        level = below
    return depth


def _describe(character: str) -> str:
    return f"the character U+{ord(character):04X}"
