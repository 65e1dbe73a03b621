"""`dodo-transform test` and `check`: what a transform makes of sample events, as the service would.

Runs go to sandbox processes with the service's backstop (`sandbox_processes.py`), so a
handler stuck in one long built-in call ends at its time limit here too, with the service's
error; only compiling (which runs none of the file) happens in this process.

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
`check` also warns of two enabled transforms that make the same Segment call on one
event (`duplicate_calls`: a docs snippet saved beside the shipped one sends every
"Payment Completed" twice), as the pipeline logs when the transforms in service change.
"""

from __future__ import annotations

import atexit
import difflib
import json
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dodo_transform.errors import HandlerError, PayloadError
from dodo_transform.limits import Limits
from dodo_transform.outgoing import OutgoingRequest, segment, with_headers
from dodo_transform.outgoing.destination import Allowlist, destination_of
from dodo_transform.outgoing.redaction import REDACTED, scrub, scrub_json
from dodo_transform.transforms.engine import Outcome, OutcomeKind, version_of
from dodo_transform.transforms.event import Event
from dodo_transform.transforms.quarantine import QUARANTINED, STRIKES
from dodo_transform.transforms.sandbox import Sandbox
from dodo_transform.transforms.sandbox_processes import Run, SandboxPool, TransformSpec
from dodo_transform.transforms.settings import DEFAULTS, TransformSettings, read_settings

# Runs transforms on events: the outcomes in order (`SandboxPool.run`, or the console's).
Runner = Callable[[Sequence[Run]], list[Outcome]]

# The url a handler sees when trying whether it relies on transforms.toml for one.
_PROBE_URL = "https://connector-endpoint.invalid/"
# The example events: the repository's examples/events, or the copy the wheel ships where
# pyproject.toml puts it (beside the console, whose sample chooser offers them too).
_PACKAGE_EXAMPLES = Path(__file__).resolve().parents[1] / "web" / "console" / "examples"
_REPOSITORY_EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "events"
# What tells two calls of a type apart, besides the user (identify has nothing else).
_CALL_NAMES = {
    "track": "event",
    "page": "name",
    "screen": "name",
    "group": "groupId",
    "alias": "previousId",
}
# The calls Segment counts (events, page and screen views): sent twice, counted twice.
_COUNTED = frozenset({"track", "page", "screen"})


class Verdict(StrEnum):
    SAME = "ok"
    NEW = "new"
    CHANGED = "changed"
    UPDATED = "updated"
    BROKEN = "error"


@cache
def examples_folder() -> Path | None:
    """The folder of example events (one per Dodo event type), if this install has one."""
    for folder in (_PACKAGE_EXAMPLES, _REPOSITORY_EXAMPLES):
        if folder.is_dir():
            return folder
    return None


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
    # The secrets of its settings (a credential, a URL from `${NAME}`): never shown.
    secrets: frozenset[str] = frozenset()

    def golden(self) -> dict[str, Any]:
        """What the golden files hold: `Outcome.to_json()`, requests as they would go out,
        every secret of its settings replaced (in a payload or a log line too)."""
        shown = self.outcome.to_json() | {"requests": list(self.requests)}
        hidden: dict[str, Any] = scrub_json(shown, self.secrets)
        return hidden

    def to_json(self) -> dict[str, Any]:
        """What `test --json` prints: the golden form, with every warning."""
        shown = self.golden()
        note = [self.not_received] if self.not_received else []
        shown["warnings"] = [*shown["warnings"], *note, *self.warnings]
        return shown


_shared_pool: SandboxPool | None = None
_shared_pool_lock = threading.Lock()


def sandbox_runs(runs: Sequence[Run]) -> list[Outcome]:
    """Run in this process's sandbox process, started on first use and stopped at exit: what
    `test` and `check` use, and any `Trier` given no other runner."""
    global _shared_pool
    with _shared_pool_lock:
        if _shared_pool is None:
            _shared_pool = SandboxPool(1)
            atexit.register(_shared_pool.close)
        pool = _shared_pool
    return pool.run(runs)


# The batch-level quarantine of the sandbox processes stops a version that keeps hitting
# its limit; here that is no quarantine, only runs not made.
_NOT_RUN = Outcome(
    OutcomeKind.ERROR,
    error=f"not run: the handler hit its resource limit on {STRIKES} events in a row (the "
    "service would quarantine this version until the file changes)",
    hit_limit=True,
)


class Trier:
    """Runs transform files as the service would, with their `transforms.toml` settings and
    its limits, in sandbox processes (`runner`; this process's own by default)."""

    def __init__(
        self,
        allowlist: Allowlist,
        environ: Mapping[str, str] | None = None,
        *,
        limits: Limits | None = None,
        runner: Runner | None = None,
    ) -> None:
        self.allowlist = allowlist
        self.environ = environ
        self.limits = limits or Limits()
        self._runner = runner or sandbox_runs

    def settings(self, path: Path) -> TransformSettings:
        """The file's table of the `transforms.toml` beside it; `ConfigError` if it is bad.
        A variable its headers need but that is not set is a warning here, not an error."""
        tables = read_settings(path.parent, self.environ, unset_ok=True)
        return tables.get(path.stem, DEFAULTS)

    def tables(self, directory: Path) -> list[str]:
        """The names of the tables of the folder's `transforms.toml`."""
        return list(read_settings(directory, self.environ, unset_ok=True))

    def load(self, path: Path, settings: TransformSettings) -> TransformSpec:
        """The transform as the service would run it; `HandlerError` if the file cannot be read
        or does not compile. Compiled here, run nowhere: its top level first runs in a sandbox
        process, with the first event."""
        try:
            source = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise HandlerError(f"{path}: cannot read transform: {error}") from None
        problem = Sandbox.compile_error(source, str(path), self.limits)
        if problem is not None:
            raise HandlerError(problem)
        options = settings.engine_options()
        return TransformSpec(
            name=path.stem,
            version=version_of(source, options["settings_digest"]),
            source=source,
            filename=str(path),
            limits=self.limits,
            **options,
        )

    def run(self, spec: TransformSpec, settings: TransformSettings, event: Event) -> Trial:
        """One event's trial."""
        (trial,) = self.run_all(spec, settings, [event])
        return trial

    def run_all(
        self, spec: TransformSpec, settings: TransformSettings, events: Sequence[Event]
    ) -> list[Trial]:
        """Every event's trial, in order; the runs go to the sandbox process in one batch."""
        warnings = self.setup_warnings(spec.name, settings)
        received = [event for event in events if settings.receives(event.event_type)]
        outcomes = dict(zip(map(id, received), self._outcomes(spec, received), strict=True))
        probed = self._url_probes(spec, settings, received, outcomes)
        trials = []
        for event in events:
            outcome = outcomes.get(id(event))
            if outcome is None:
                trials.append(self._not_received(spec.name, event, warnings))
            else:
                extra = self._request_warnings(spec.name, settings, outcome, event)
                extra += probed.get(id(event), ())
                trials.append(self._trial(outcome, settings, warnings + extra))
        return trials

    def _outcomes(self, spec: TransformSpec, events: Sequence[Event]) -> list[Outcome]:
        outcomes = self._runner([Run(spec, event) for event in events])
        return [_NOT_RUN if outcome == QUARANTINED else outcome for outcome in outcomes]

    @staticmethod
    def _not_received(name: str, event: Event, warnings: tuple[str, ...]) -> Trial:
        note = (
            f"[{name}] does not receive {event.event_type} (events in transforms.toml): "
            "the service does not run it on this event"
        )
        return Trial(Outcome(OutcomeKind.SKIPPED), (), warnings, not_received=note)

    @staticmethod
    def _trial(outcome: Outcome, settings: TransformSettings, warnings: tuple[str, ...]) -> Trial:
        shown = tuple(_shown(request, settings) for request in outcome.requests)
        secrets = settings.secret_values()
        warnings = tuple(scrub(warning, secrets) for warning in warnings)
        return Trial(_hidden(outcome, secrets), shown, warnings, secrets=secrets)

    def setup_warnings(self, name: str, settings: TransformSettings) -> tuple[str, ...]:
        """What is wrong with the transform's settings whatever the event."""
        warnings = [
            f"{variable} is not set in the environment: the service will not load [{name}] "
            "until it is (headers in transforms.toml)"
            for variable in settings.unset_variables()
        ]
        events_warning = settings.events_warning(name)
        if events_warning:
            warnings.append(events_warning)
        return tuple(warnings)

    def _request_warnings(
        self, name: str, settings: TransformSettings, outcome: Outcome, event: Event
    ) -> tuple[str, ...]:
        warnings = []
        for request in outcome.requests:
            if settings.headers and not settings.credentials_go_to(request.url):
                configured = destination_of(settings.target_url) or "its url (none is set)"
                warnings.append(
                    f"[{name}] sends to {destination_of(request.url)}: the headers in"
                    f" transforms.toml go only to {configured}, so this request carries none"
                )
            if not self.allowlist.allows(request.url, settings.target_url):
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

    def _url_probes(
        self,
        spec: TransformSpec,
        settings: TransformSettings,
        events: Sequence[Event],
        outcomes: Mapping[int, Outcome],
    ) -> dict[int, tuple[str, ...]]:
        """A warning for each event on which the handler builds a request but leaves the url
        to the endpoint, as the snippets of Dodo's Slack, Discord, Zapier ... pages do: the
        skipped events are run again with a url given (in one batch)."""
        if settings.url:
            return {}
        skipped = [e for e in events if outcomes[id(e)].kind is OutcomeKind.SKIPPED]
        if not skipped:
            return {}
        probe = replace(spec, version=f"{spec.version}-url-probe", default_url=_PROBE_URL)
        warning = (
            f"the handler sets no url and transforms.toml gives none for [{spec.name}]: "
            "a Dodo connector page leaves it to the endpoint's URL; set url = "
            '"https://..." for it in transforms.toml',
        )
        found: dict[int, tuple[str, ...]] = {}
        for event, outcome in zip(skipped, self._outcomes(probe, skipped), strict=True):
            if any(request.payload != json.loads(event.body) for request in outcome.requests):
                found[id(event)] = warning
        return found


def _hidden(outcome: Outcome, secrets: frozenset[str]) -> Outcome:
    """The outcome as a person sees it: its console output and error without a secret of the
    settings (a handler may print what `env` gave it)."""
    if not secrets:
        return outcome
    logs = tuple((level, scrub(text, secrets)) for level, text in outcome.logs)
    error = None if outcome.error is None else scrub(outcome.error, secrets)
    return replace(outcome, logs=logs, error=error)


def _shown(request: OutgoingRequest, settings: TransformSettings) -> dict[str, Any]:
    """The request as the sender would add to it, for a person: configured headers (only on
    requests to the configured url's destination) are credentials, so their values are never
    shown, whatever their names; nor is any other secret of the settings."""
    configured = {
        header: REDACTED
        for header in settings.header_values()
        if settings.credentials_go_to(request.url)
    }
    headers = with_headers(request.headers, configured)
    shown: dict[str, Any] = scrub_json(
        replace(request, headers=headers).redacted(), settings.secret_values()
    )
    return shown


@dataclass(frozen=True)
class SegmentCall:
    """One Segment call, as far as telling it from another goes: its type, what it names
    (track's event, page's or screen's name, group's groupId, alias's previousId; nothing for
    identify), its user, and the source it goes to."""

    kind: str
    name: str | None
    user: str  # "userId cus_123", or "anonymousId ..." when there is no userId
    # The transform's write_key (None: the default): a call to another source is another
    # count. A credential: compared, never shown.
    source: str | None = field(default=None, repr=False)

    def __str__(self) -> str:
        named = "" if self.name is None else f" {json.dumps(self.name, ensure_ascii=False)}"
        return f"{self.kind}{named} for {self.user}"

    @property
    def effect(self) -> str:
        """What sending it twice does."""
        return f"Segment would {'count' if self.kind in _COUNTED else 'receive'} it twice"


def segment_calls(
    requests: Iterable[OutgoingRequest], write_key: str | None = None
) -> frozenset[SegmentCall]:
    """The Segment calls among these requests (the items of a `/v1/batch` each count), leaving
    out those Segment would drop: those reach no count."""
    found: set[SegmentCall | None] = set()
    for request in requests:
        if not segment.is_segment_url(request.url):
            continue
        kind = segment.call_type(request.url)
        payload = request.payload
        messages = [(kind, payload)]
        if kind == "batch":
            batch = payload.get("batch") if isinstance(payload, dict) else None
            items = batch if isinstance(batch, list) else []
            messages = [(item.get("type"), item) for item in items if isinstance(item, dict)]
        found.update(_call(kind, message, write_key) for kind, message in messages)
    return frozenset(call for call in found if call is not None)


def _call(kind: str | None, message: Any, source: str | None) -> SegmentCall | None:
    if kind not in segment.CALL_TYPES or segment.problems(kind, message):
        return None
    who = "userId" if message.get("userId") else "anonymousId"
    name = message.get(_CALL_NAMES[kind]) if kind in _CALL_NAMES else None
    return SegmentCall(kind, _text(name), f"{who} {_text(message[who])}", source)


def _text(value: Any) -> str | None:
    return value if value is None or isinstance(value, str) else json.dumps(value)


@dataclass(frozen=True)
class Duplicate:
    """Two transforms that make the same Segment call on one event."""

    first: str
    second: str
    call: SegmentCall

    def warning_for(self, name: str) -> str:
        """The warning for one of the two transforms, naming the other."""
        other = self.second if name == self.first else self.first
        return (
            f"makes the same Segment call as {other}.js: {self.call} ({self.call.effect}; "
            "remove or disable one, e.g. enabled = false in transforms.toml)"
        )


def duplicate_calls(calls: Mapping[str, Collection[SegmentCall]]) -> list[Duplicate]:
    """Each call two transforms both make on one event, given the calls of every transform
    that would run on it (enabled, and receiving its type); by transform name."""
    names = sorted(calls)
    return [
        Duplicate(first, second, call)
        for i, first in enumerate(names)
        for second in names[i + 1 :]
        for call in sorted(set(calls[first]) & set(calls[second]), key=str)
    ]


def misspelt_tables(tables: Iterable[str], names: Collection[str]) -> dict[str, tuple[str, ...]]:
    """Warnings by transform name: a table of `transforms.toml` that names no transform file
    but comes close to the transform's name (its settings apply to nothing)."""
    found: dict[str, tuple[str, ...]] = {}
    for table in sorted(set(tables) - set(names)):
        for near in difflib.get_close_matches(table, names, n=1):
            found[near] = (
                *found.get(near, ()),
                f"[{table}] in transforms.toml names no transform file; did you mean [{near}]? "
                "Its settings apply to no transform",
            )
    return found


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

    A row's warnings include the Segment calls it makes that another enabled transform makes
    too on that event, and a table of `transforms.toml` that looks meant for it but is misspelt.
    Raises `ConfigError` when `transforms.toml` is bad, `PayloadError` for an unusable event.
    """
    events = load_events(events_dir)
    paths = sorted(transforms_dir.glob("*.js"))
    misspelt = misspelt_tables(trier.tables(transforms_dir), [path.stem for path in paths])
    rows: list[tuple[int, Row]] = []  # (index of the event, row)
    calls: dict[int, dict[str, frozenset[SegmentCall]]] = {}  # same, -> transform -> calls
    for path in paths:
        settings = trier.settings(path)
        try:
            spec = trier.load(path, settings)
        except HandlerError as error:
            rows.append((-1, Row(path.stem, "*", "error", Verdict.BROKEN, str(error))))
            continue
        trials = trier.run_all(spec, settings, events)
        for index, (event, trial) in enumerate(zip(events, trials, strict=True)):
            golden = golden_path(expected_dir, path.stem, event.event_type)
            row = _compare(golden, trial, path.stem, event.event_type, update)
            warnings = trial.warnings + misspelt.get(path.stem, ())
            rows.append((index, replace(row, warnings=warnings)))
            if settings.enabled and trial.not_received is None:
                made = segment_calls(trial.outcome.requests, settings.write_key)
                calls.setdefault(index, {})[path.stem] = made
    yield from _with_duplicates(rows, calls)


def _with_duplicates(
    rows: list[tuple[int, Row]], calls: Mapping[int, Mapping[str, frozenset[SegmentCall]]]
) -> Iterator[Row]:
    """The rows, with a warning per call two transforms both make on an event: on the row of
    the first of the two (by name), which names the other, so the pair is said once."""
    found: dict[tuple[int, str], list[str]] = {}
    for index, made in calls.items():
        for duplicate in duplicate_calls(made):
            first = duplicate.first
            found.setdefault((index, first), []).append(duplicate.warning_for(first))
    for index, row in rows:
        extra = found.get((index, row.transform))
        yield replace(row, warnings=(*row.warnings, *extra)) if extra else row


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
