"""`dodo-transform test` and `check`: what a transform makes of sample events, as the service would.

`trial` runs one transform file on one event with its `transforms.toml` settings: a
type its `events` leave out is not run (`skipped`), its `url` and `env` reach the
handler, and its `headers` are shown on each request (redacted: they are credentials).
Its warnings are about the setup around the handler, which the service would
otherwise show only as `blocked` or `dead` deliveries: a destination off the
allowlist, a handler that sets no url where the Dodo connector supplied one, a
Dodo body sent on unchanged (a type the handler does not handle), a credential's
variable not set, an event type in `events` that Dodo does not send.

`check` runs every transform on every sample event and compares with the golden
files at `<expected>/<transform>/<event type>.json`, which hold `Trial.golden()`.
A missing golden file is reported as `new`, not as a failure; `--update` writes them
all. Warnings are not part of the golden files: they depend on the environment.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dodo_transform.errors import HandlerError, PayloadError
from dodo_transform.outbound.sender import Allowlist, with_headers
from dodo_transform.outgoing import OutgoingRequest
from dodo_transform.transforms.engine import Outcome, OutcomeKind, Transform
from dodo_transform.transforms.event import Event
from dodo_transform.transforms.limits import Limits
from dodo_transform.transforms.registry import TransformSettings, read_settings

# Dodo's 47 event types (SDK 2.47): a name in `events` that matches none is a typo, or new.
_EVENTS_BY_KIND = {
    "payment": ("succeeded", "failed", "processing", "cancelled"),
    "refund": ("succeeded", "failed"),
    "dispute": ("opened", "expired", "accepted", "cancelled", "challenged", "won", "lost"),
    "subscription": (
        "active", "renewed", "on_hold", "paused", "unpaused", "cancelled", "failed", "expired",
        "plan_changed", "updated", "update_payment_method",
    ),
    "license_key": ("created",),
    "payout": ("created", "on_hold", "in_progress", "failed", "success"),
    "credit": (
        "added", "deducted", "expired", "rolled_over", "rollover_forfeited", "overage_charged",
        "overage_reset", "manual_adjustment", "balance_low",
    ),
    "abandoned_checkout": ("detected", "recovered"),
    "dunning": ("started", "recovered"),
    "entitlement_grant": ("created", "delivered", "failed", "revoked"),
}  # fmt: skip
EVENT_TYPES = frozenset(
    f"{kind}.{name}" for kind, names in _EVENTS_BY_KIND.items() for name in names
)
# The url a handler sees when trying whether it relies on transforms.toml for one.
_PROBE_URL = "https://connector-endpoint.invalid/"


class Verdict(StrEnum):
    SAME = "ok"
    NEW = "new"
    CHANGED = "changed"
    UPDATED = "updated"
    BROKEN = "error"


def load_events(events_dir: Path) -> list[Event]:
    """Every `*.json` event in a folder; `PayloadError` naming the file that is unusable."""
    events = []
    for path in sorted(events_dir.glob("*.json")):
        try:
            events.append(Event.from_body(path.read_bytes(), webhook_id=f"msg_{path.stem}"))
        except PayloadError as error:
            raise PayloadError(f"{path}: {error}") from None
    return events


def golden_path(expected_dir: Path, transform: str, event_type: str) -> Path:
    return expected_dir / transform / f"{event_type}.json"


@dataclass(frozen=True)
class Trial:
    """One transform on one event, as the service would run it and what to warn of."""

    outcome: Outcome
    requests: tuple[dict[str, Any], ...]  # as they would go out, credentials redacted
    warnings: tuple[str, ...] = ()
    # Set when its `events` leave this type out: the handler did not run, and why.
    not_received: str | None = None

    def golden(self) -> dict[str, Any]:
        """What the golden files hold: `Outcome.to_json()`, requests as they would go out."""
        return self.outcome.to_json() | {"requests": list(self.requests)}

    def to_json(self) -> dict[str, Any]:
        """What `test --json` prints: the golden form, with every warning."""
        shown = self.golden()
        note = [self.not_received] if self.not_received else []
        shown["warnings"] = [*shown["warnings"], *note, *self.warnings]
        return shown


class Trier:
    """Runs transform files as the service would, with their `transforms.toml` settings."""

    def __init__(self, allowlist: Allowlist, environ: Mapping[str, str] | None = None) -> None:
        self.allowlist = allowlist
        self.environ = environ

    def settings(self, path: Path) -> TransformSettings:
        """The file's table of the `transforms.toml` beside it; `ConfigError` if it is bad.
        A variable its headers need but that is not set is a warning here, not an error."""
        tables = read_settings(path.parent, self.environ, unset_ok=True)
        return tables.get(path.stem, TransformSettings())

    def load(self, path: Path, settings: TransformSettings) -> Transform:
        """Compile the file (`HandlerError` if it cannot be)."""
        return Transform.from_file(path, default_url=settings.url, env=settings.env)

    def run(self, transform: Transform, settings: TransformSettings, event: Event) -> Trial:
        name = transform.name
        warnings = self.setup_warnings(name, settings)
        if not settings.receives(event.event_type):
            note = (
                f"[{name}] does not receive {event.event_type} (events in transforms.toml): "
                "the service does not run it on this event"
            )
            return Trial(Outcome(OutcomeKind.SKIPPED), (), warnings, not_received=note)
        outcome = transform.run(event)
        shown = tuple(_shown(request, settings) for request in outcome.requests)
        warnings += self._request_warnings(name, settings, outcome, event)
        if outcome.kind is OutcomeKind.SKIPPED and not settings.url:
            warnings += self._url_expected(transform, settings, event)
        return Trial(outcome, shown, warnings)

    def setup_warnings(self, name: str, settings: TransformSettings) -> tuple[str, ...]:
        """What is wrong with the transform's settings whatever the event."""
        warnings = [
            f"{variable} is not set in the environment: the service will not load [{name}] "
            "until it is (headers in transforms.toml)"
            for variable in settings.unset_variables()
        ]
        unknown = [
            pattern
            for pattern in settings.events or ()
            if not any(TransformSettings(events=[pattern]).receives(kind) for kind in EVENT_TYPES)
        ]
        if unknown:
            warnings.append(
                f"events for [{name}] in transforms.toml: {', '.join(unknown)} matches none of "
                "Dodo's event types"
            )
        return tuple(warnings)

    def _request_warnings(
        self, name: str, settings: TransformSettings, outcome: Outcome, event: Event
    ) -> tuple[str, ...]:
        warnings = []
        for request in outcome.requests:
            if not self.allowlist.allows(request.url, settings.url):
                host = urlsplit(request.url).hostname
                warnings.append(
                    f"{host} is not an allowed destination: the service would block this "
                    f"request; set url for [{name}] in transforms.toml to an address on it, "
                    "or add it to DODO_TRANSFORM_ALLOWED_HOSTS"
                )
            if settings.url and request.payload == json.loads(event.body):
                warnings.append(
                    "the Dodo event goes out unchanged: the handler does not handle this type; "
                    f"list the types it handles in events = [...] for [{name}] in "
                    "transforms.toml"
                )
        return tuple(warnings)

    def _url_expected(
        self, transform: Transform, settings: TransformSettings, event: Event
    ) -> tuple[str, ...]:
        """A warning when the handler builds a request but leaves the url to the endpoint,
        as the snippets of Dodo's Slack, Discord, Zapier ... pages do."""
        probe = Transform(
            name=transform.name,
            source=transform.source,
            filename=transform.filename,
            default_url=_PROBE_URL,
            env=settings.env,
            limits=Limits(),
        )
        requests = probe.run(event).requests
        if any(request.payload != json.loads(event.body) for request in requests):
            return (
                f"the handler sets no url and transforms.toml gives none for [{transform.name}]: "
                "a Dodo connector page leaves it to the endpoint's URL; set url = "
                '"https://..." for it in transforms.toml',
            )
        return ()


def _shown(request: OutgoingRequest, settings: TransformSettings) -> dict[str, Any]:
    """The request as the sender would add to it, for a person: configured headers are
    credentials, so their values are never shown, whatever their names."""
    configured = {header: "[redacted]" for header in settings.header_values()}
    headers = with_headers(request.headers, configured)
    shown: dict[str, Any] = replace(request, headers=headers).redacted()
    return shown


@dataclass(frozen=True)
class Row:
    transform: str
    event: str
    outcome: str
    verdict: Verdict
    detail: str = ""
    warnings: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return self.verdict in (Verdict.CHANGED, Verdict.BROKEN)


def check(
    transforms_dir: Path,
    events_dir: Path,
    expected_dir: Path,
    trier: Trier,
    *,
    update: bool = False,
) -> Iterator[Row]:
    """Run every transform on every event and compare (or, with `update`, rewrite) the goldens.

    Raises `ConfigError` when `transforms.toml` is bad, `PayloadError` for an unusable event.
    """
    events = load_events(events_dir)
    for path in sorted(transforms_dir.glob("*.js")):
        settings = trier.settings(path)
        try:
            transform = trier.load(path, settings)
        except HandlerError as error:
            yield Row(path.stem, "*", "error", Verdict.BROKEN, str(error))
            continue
        for event in events:
            trial = trier.run(transform, settings, event)
            golden = golden_path(expected_dir, path.stem, event.event_type)
            row = _compare(golden, trial, path.stem, event.event_type, update)
            yield replace(row, warnings=trial.warnings)


def _compare(golden: Path, trial: Trial, transform: str, event_type: str, update: bool) -> Row:
    outcome = trial.outcome
    actual = trial.golden()
    row = Row(transform, event_type, outcome.kind.value, Verdict.SAME)
    if outcome.error:
        row = Row(transform, event_type, outcome.kind.value, Verdict.BROKEN, outcome.error)
    if update:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(dump(actual))
        return row if row.failed else Row(transform, event_type, row.outcome, Verdict.UPDATED)
    try:
        expected = json.loads(golden.read_text("utf-8"))
    except FileNotFoundError:
        return row if row.failed else Row(transform, event_type, row.outcome, Verdict.NEW)
    if expected != actual:
        return Row(
            transform, event_type, row.outcome, Verdict.CHANGED, _first_difference(expected, actual)
        )
    return row


def dump(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def _first_difference(expected: Any, actual: Any, path: str = "") -> str:
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in sorted(expected.keys() | actual.keys()):
            if expected.get(key) != actual.get(key):
                return _first_difference(expected.get(key), actual.get(key), f"{path}.{key}")
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        for index, (left, right) in enumerate(zip(expected, actual, strict=True)):
            if left != right:
                return _first_difference(left, right, f"{path}[{index}]")
    return (
        f"{path or 'outcome'}: expected {json.dumps(expected)[:80]}, got {json.dumps(actual)[:80]}"
    )
