"""The transform engine: run a `handler(webhook)` file on one event and say what to send.

A transform is one `.js` file declaring `function handler(webhook)`, exactly as
Dodo's dashboard and docs print it (Svix's contract), run as V8 runs it: a
sloppy script unless it says "use strict", and awaited when the handler is async
or returns a promise (see sandbox.py). For each event the handler gets
`{method, url, eventType, payload, cancel, headers, env}` and returns it,
changed; `Transform.run` turns that into a typed `Outcome`:

- `deliver`: one request, or several when the handler returns an array;
- `cancelled`: the handler set `cancel = true`;
- `skipped`: the handler left `url` empty (the docs' snippets do this for
  events they do not handle);
- `error`: the handler is wrong; the message names file:line:col and what to do.

`run` never raises: whatever goes wrong while running one event (the handler, a
limit, a returned value Python cannot read) is that event's `error` outcome.
A returned request that could never be sent (see `outgoing/wire.py`) is an
error here already, naming the file, rather than a dead delivery later.

Thread safety: `Transform.run` may be called from any number of threads at
once. Each thread gets its own QuickJS runtime for the transform (a runtime
must stay on the thread that made it), created on first use and kept for the
life of the `Transform`.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dodo_transform.errors import HandlerError
from dodo_transform.limits import Limits
from dodo_transform.outgoing import OutgoingRequest, segment, well_formed, wire
from dodo_transform.transforms.event import Event
from dodo_transform.transforms.sandbox import Sandbox, SandboxBroken

METHODS = ("POST", "PUT", "PATCH")
_RETURN_HINT = "return the webhook object (set webhook.cancel = true to skip an event)"
_UNSERIALISABLE_TYPES = ("undefined", "function", "symbol", "bigint")


class OutcomeKind(StrEnum):
    DELIVER = "deliver"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    ERROR = "error"


@dataclass(frozen=True)
class Outcome:
    """What one transform made of one event."""

    kind: OutcomeKind
    requests: tuple[OutgoingRequest, ...] = ()
    logs: tuple[tuple[str, str], ...] = ()
    error: str | None = None
    hit_limit: bool = False  # the error is a time, memory or stack limit
    # The handler's report in bytes, about what the outcome holds (0: not known): what bounds
    # the outcomes a sandbox process hands back at once.
    size: int = field(default=0, compare=False)

    @cached_property
    def warnings(self) -> tuple[str, ...]:
        """What Segment would drop or frown on in these requests (computed when first asked)."""
        return tuple(warning for request in self.requests for warning in segment.lint(request))

    def to_json(self) -> dict[str, Any]:
        """The shape `dodo-transform test --json` prints and the golden files hold."""
        return {
            "outcome": self.kind.value,
            "requests": [request.redacted() for request in self.requests],
            "logs": [{"level": level, "message": message} for level, message in self.logs],
            "warnings": list(self.warnings),
            "error": self.error,
        }


@dataclass
class Transform:
    """One compiled `handler(webhook)` file, runnable from any thread."""

    name: str
    source: str
    filename: str
    default_url: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    max_requests: int = 100  # requests one event may make (an array returned)
    settings_digest: str = ""  # `TransformSettings.digest()`: part of the version

    def __post_init__(self) -> None:
        self.version = version_of(self.source, self.settings_digest)
        self._env_json = json.dumps(dict(self.env))
        self._local = threading.local()
        # Compile now so a broken file is reported at load time, not on the first event.
        self._local.sandbox = Sandbox(self.source, self.filename, self.limits)

    def options(self) -> dict[str, Any]:
        """What it was made with from its settings (`TransformSettings.engine_options`)."""
        return {
            "default_url": self.default_url,
            "env": dict(self.env),
            "max_requests": self.max_requests,
            "settings_digest": self.settings_digest,
        }

    @classmethod
    def from_file(cls, path: Path, **options: Any) -> Transform:
        """Load `path`; the transform's name is the file's stem."""
        try:
            source = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise HandlerError(f"{path}: cannot read transform: {error}") from None
        return cls(name=path.stem, source=source, filename=str(path), **options)

    def run(self, event: Event) -> Outcome:
        """Run the handler on `event`; every failure is an `error` outcome, never raised."""
        try:
            return self._run(event)
        except SandboxBroken as error:
            self._local.sandbox = None
            return Outcome(OutcomeKind.ERROR, error=str(error), hit_limit=True)
        except RecursionError:
            self._local.sandbox = None
            return Outcome(
                OutcomeKind.ERROR,
                error=f"{self.filename}: the returned webhook is nested too deeply to read; "
                f"keep payloads under {wire.MAX_PAYLOAD_DEPTH} levels",
            )
        except Exception as error:
            # Not the handler's mistake as far as we know: a fresh runtime for the next event.
            self._local.sandbox = None
            return Outcome(
                OutcomeKind.ERROR,
                error=f"{self.filename}: the handler's result could not be used "
                f"({type(error).__name__}: {error})",
            )

    def _run(self, event: Event) -> Outcome:
        report = self._sandbox().run(
            event.event_type,
            event.body,
            self.default_url,
            self._env_json,
            self.max_requests,
            event.mode,
        )
        raw_logs = report["logs"]
        logs = (
            tuple((str(level), well_formed(str(text))) for level, text in raw_logs)
            if raw_logs
            else ()
        )
        if report.get("logsTruncated"):
            logs += (("warn", f"[console output cut at {self.limits.log_bytes} characters]"),)
        try:
            return self._interpret(report, logs, report.get("bytes", 0))
        except HandlerError as error:
            return Outcome(OutcomeKind.ERROR, logs=logs, error=str(error))

    def _sandbox(self) -> Sandbox:
        sandbox: Sandbox | None = getattr(self._local, "sandbox", None)
        if sandbox is None:
            sandbox = Sandbox(self.source, self.filename, self.limits)
            self._local.sandbox = sandbox
        return sandbox

    def _interpret(
        self, report: dict[str, Any], logs: tuple[tuple[str, str], ...], size: int
    ) -> Outcome:
        if report.get("missingHandler"):
            raise HandlerError(
                f"{self.filename}: no handler function: declare "
                "`function handler(webhook) { ... return webhook; }`"
            )
        if "error" in report:
            raise HandlerError(report["error"])
        if "tooMany" in report:
            raise HandlerError(
                f"{self.filename}: the handler returned {report['tooMany']} requests for one "
                f"event; at most {self.max_requests} are sent (max_requests in transforms.toml)"
            )
        if "unserialisable" in report:
            raise HandlerError(
                f"{self.filename}: the returned webhook is not JSON-serialisable "
                f"({report['unserialisable']}); use plain objects, strings, numbers and arrays"
            )
        items: list[dict[str, Any]] = report["items"]
        fan_out: bool = report["fanOut"]
        requests: list[OutgoingRequest] = []
        cancelled = 0
        for index, item in enumerate(items):
            where = f"item {index} of the returned array" if fan_out else "the returned value"
            if item["type"] != "object":
                what = f"item {index} of the returned array is" if fan_out else "handler returned"
                raise HandlerError(f"{self.filename}: {what} {item['type']}; {_RETURN_HINT}")
            if item.get("cancel"):
                cancelled += 1
                continue
            request = self._request(item, where)
            if request is not None:
                requests.append(request)
        if requests:
            return Outcome(OutcomeKind.DELIVER, tuple(requests), logs, size=size)
        if cancelled or not items:
            return Outcome(OutcomeKind.CANCELLED, logs=logs, size=size)
        return Outcome(OutcomeKind.SKIPPED, logs=logs, size=size)

    def _request(self, item: dict[str, Any], where: str) -> OutgoingRequest | None:
        url = item.get("url")
        if url is None or url == "":
            return None
        if not isinstance(url, str):
            raise HandlerError(f"{self.filename}: url in {where} is not a string: {url!r}")
        if not _is_absolute_http(url):
            raise HandlerError(
                f"{self.filename}: url {url!r} in {where} is not an absolute "
                "http(s) URL, e.g. https://api.segment.io/v1/track"
            )
        method = item.get("method")
        if not isinstance(method, str) or method.upper() not in METHODS:
            raise HandlerError(
                f"{self.filename}: method {method!r} in {where} is not one of {', '.join(METHODS)}"
            )
        if item["payloadType"] in _UNSERIALISABLE_TYPES:
            raise HandlerError(
                f"{self.filename}: payload in {where} is {item['payloadType']}, "
                "not JSON-serialisable; set webhook.payload to an object"
            )
        request = OutgoingRequest(
            method.upper(), url, self._headers(item.get("headers"), where), item.get("payload")
        )
        problem = wire.problem(request)
        if problem:
            raise HandlerError(f"{self.filename}: in {where}, {problem}")
        return request

    def _headers(self, headers: Any, where: str) -> dict[str, str]:
        if headers is None:
            return {}
        if not isinstance(headers, dict):
            raise HandlerError(f"{self.filename}: headers in {where} must be an object of strings")
        result: dict[str, str] = {}
        for name, value in headers.items():
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise HandlerError(
                    f"{self.filename}: header {name!r} in {where} must be a string, "
                    f"not {json.dumps(value)[:60]}"
                )
            result[str(name)] = str(value)
        return result


def version_of(source: str, settings_digest: str = "") -> str:
    """A transform's version: a hash of its source, and of its settings when it has any
    (`TransformSettings.digest()`), so that a changed table is a new version too."""
    text = source if not settings_digest else f"{source}\0{settings_digest}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


@lru_cache(maxsize=256)
def _is_absolute_http(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)
