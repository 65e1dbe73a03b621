"""The `dodo-transform` command line.

Every user mistake (a missing file, bad JSON, a broken handler) ends in a
one-line message and an exit code, never a traceback:
0 success, 1 a handler or check failed, 2 unusable input or settings.
"""

from __future__ import annotations

import json
import sys
import uuid
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn
from urllib.parse import urlsplit

import httpx
import typer
from rich.console import Console
from rich.table import Table

from dodo_transform import __version__, signing
from dodo_transform.errors import ConfigError, HandlerError, PayloadError, StorageError
from dodo_transform.outgoing import segment
from dodo_transform.outgoing.destination import Allowlist
from dodo_transform.settings import WEBHOOK_PATH, Settings, load_settings, unknown_names
from dodo_transform.store.records import DeliveryStatus
from dodo_transform.transforms import checks
from dodo_transform.transforms.engine import Outcome, OutcomeKind
from dodo_transform.transforms.event import Event
from dodo_transform.transforms.quarantine import STRIKES
from dodo_transform.webhook_secret import SECRET_FILE, signing_secrets

app = typer.Typer(
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    # Plain help: rich markup would eat the "[default]" hints and show flags as "<bool>".
    rich_markup_mode=None,
    no_args_is_help=True,
    help="Run Dodo Payments webhook transformations and deliver them to Segment.",
)
out = Console(highlight=False, soft_wrap=True)  # lines wrap at the terminal, not mid-path
err = Console(stderr=True, highlight=False, soft_wrap=True)


def show_version(value: bool) -> None:
    if value:
        out.print(f"dodo-transform {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=show_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Run Dodo Payments webhook transformations and deliver them to Segment."""


def table_of(*headers: str) -> Table:
    """A table whose cells wrap rather than hide what does not fit the terminal."""
    table = Table()
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"error: {message}", markup=False)
    raise typer.Exit(code)


def read_event(path: Path) -> Event:
    try:
        return Event.from_body(path.read_bytes(), webhook_id=f"msg_{path.stem}")
    except OSError as error:
        fail(f"cannot read event {path}: {error.strerror or error}")
    except PayloadError as error:
        fail(f"{path}: {error}")


@app.command()
def test(
    handler: Annotated[
        Path, typer.Argument(help="The transform file, e.g. transforms/segment_track_payments.js")
    ],
    event: Annotated[
        Path | None,
        typer.Argument(help="A webhook body, e.g. examples/events/payment.succeeded.json"),
    ] = None,
    event_id: Annotated[
        int | None,
        typer.Option(help="Instead of EVENT: a stored event of the running service (`events`)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead.")] = False,
    server: ServerOption = None,
    config: ConfigOption = None,
) -> None:
    """Run HANDLER on EVENT and show what would be sent (the dashboard's Test button).
    Nothing is stored or sent."""
    if (event is None) == (event_id is None):
        fail("give an EVENT file or --event-id N (a stored event), not both")
    sample = read_event(event) if event is not None else stored_event(event_id, server, config)
    if not handler.is_file():
        fail(f"cannot read handler {handler}: no such file")
    trier = trier_from(settings_from(config))
    try:
        transform_settings = trier.settings(handler)
    except ConfigError as error:
        fail(str(error))
    try:
        transform = trier.load(handler, transform_settings)
    except HandlerError as error:
        trial = checks.Trial(Outcome(OutcomeKind.ERROR, error=str(error)), ())
    else:
        trial = trier.run(transform, transform_settings, sample)
    if as_json:
        print(json.dumps(trial.to_json(), ensure_ascii=False))
    else:
        show_trial(trial)
    raise typer.Exit(1 if trial.outcome.kind is OutcomeKind.ERROR else 0)


def stored_event(event_id: int | None, server: str | None, config: Path | None) -> Event:
    """A stored event's body, from the running service."""
    stored = admin_call("GET", f"/api/events/{event_id}", server, config)
    assert isinstance(stored, dict)
    try:
        return Event.from_body(stored["body"], webhook_id=stored["webhook_id"])
    except PayloadError as error:
        fail(f"event {event_id}: {error}")


def trier_from(settings: Settings) -> checks.Trier:
    """Runs transforms as the service configured by `settings` would (its allowlist)."""
    return checks.Trier(
        Allowlist(settings.segment_base_url, settings.extra_allowed_hosts),
        environ=settings.variables(),
    )


def show_trial(trial: checks.Trial) -> None:
    outcome = trial.outcome
    colour = {"deliver": "green", "skipped": "yellow", "cancelled": "yellow"}.get(
        outcome.kind, "red"
    )
    out.print(f"outcome: [bold {colour}]{outcome.kind.value}[/]")
    if outcome.error:
        out.print(outcome.error, style="red", markup=False)
    for shown in trial.requests:
        out.print(f"\n{shown['method']} {shown['url']}", style="bold", markup=False)
        for name, value in shown["headers"].items():
            out.print(f"  {name}: {value}", markup=False)
        out.print(json.dumps(shown["payload"], indent=2, ensure_ascii=False), markup=False)
    if outcome.logs:
        out.print("\nconsole:")
        for level, message in outcome.logs:
            out.print(f"  [{level}] {message}", markup=False)
    if trial.not_received:
        out.print(f"note: {trial.not_received}", style="yellow", markup=False)
    for warning in (*outcome.warnings, *trial.warnings):
        out.print(f"warning: {warning}", style="yellow", markup=False)


@app.command()
def check(
    transforms: Annotated[Path, typer.Option(help="Folder of transform files.")] = Path(
        "transforms"
    ),
    events: Annotated[Path, typer.Option(help="Folder of sample events.")] = Path(
        "examples/events"
    ),
    expected: Annotated[Path, typer.Option(help="Folder of golden outcomes.")] = Path(
        "examples/expected"
    ),
    update: Annotated[bool, typer.Option("--update", help="Rewrite the golden files.")] = False,
) -> None:
    """Run every transform on every event; fail on an error or a golden mismatch."""
    for folder in (transforms, events):
        if not folder.is_dir():
            fail(f"{folder} is not a folder")
    trier = trier_from(settings_from())
    try:
        rows = list(checks.check(transforms, events, expected, trier, update=update))
    except (PayloadError, ConfigError) as error:
        fail(str(error))
    if not expected.is_dir() and not update:
        out.print(
            f"note: {expected} holds no golden files yet, so every run is `new`: write them"
            " with --update, then check against them",
            markup=False,
        )
    table = table_of("transform", "event", "outcome", "check", "detail")
    for row in rows:
        if row.outcome != "skipped" or row.failed:
            table.add_row(row.transform, row.event, row.outcome, row.verdict.value, row.detail)
    out.print(table)
    show_check_warnings(rows)
    failed = sum(row.failed for row in rows)
    skipped = sum(row.outcome == "skipped" and not row.failed for row in rows)
    out.print(
        f"{len(rows)} runs, {failed} failed"
        + (f"; {skipped} where a handler skipped its event are not shown" if skipped else "")
    )
    raise typer.Exit(1 if failed else 0)


def show_check_warnings(rows: list[checks.Row]) -> None:
    """Each warning once per transform, with the events it came up on."""
    seen: dict[tuple[str, str], list[str]] = {}
    runs: dict[str, int] = {}
    for row in rows:
        runs[row.transform] = runs.get(row.transform, 0) + 1
        for warning in row.warnings:
            seen.setdefault((row.transform, warning), []).append(row.event)
    for (transform, warning), kinds in seen.items():
        where = ""  # on every event: a warning about the transform itself
        if len(kinds) < runs[transform]:
            more = f" and {len(kinds) - 3} more" if len(kinds) > 3 else ""
            where = f" (on {', '.join(kinds[:3])}{more})"
        out.print(f"warning: {transform}{where}: {warning}", style="yellow", markup=False)


ServerOption = Annotated[
    str | None,
    typer.Option("--server", help="Base URL of the running service [where `serve` would listen]."),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(help="The service's NAME=value settings file, for its port and admin token."),
]


def settings_from(config: Path | None = None, **flags: object) -> Settings:
    try:
        settings = load_settings(config, **flags)
    except ConfigError as error:
        fail(str(error))
    for warning in unknown_names(config):
        err.print(f"warning: {warning}", markup=False)
    return settings


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on [127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [8000].")] = None,
    transforms: Annotated[
        Path | None, typer.Option(help="Transforms folder [./transforms].")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Where events are stored [./.dodo-transform].")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="A NAME=value settings file.")] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="postgresql://... for a database instances share [SQLite in the data dir]."
        ),
    ] = None,
    role: Annotated[
        str | None,
        typer.Option(help="all, ingest (webhooks and API) or worker (the pipeline) [all]."),
    ] = None,
    log_format: Annotated[
        str | None,
        typer.Option(help="text, json, or auto: text on a terminal, JSON otherwise [auto]."),
    ] = None,
    log_level: Annotated[
        str | None, typer.Option(help="debug, info, warning or error [info].")
    ] = None,
) -> None:
    """Receive Dodo webhooks, run the transforms and deliver the results."""
    settings = settings_from(
        config,
        host=host,
        port=port,
        transforms=transforms,
        data_dir=data_dir,
        database_url=database_url,
        role=role,
        log_format=log_format,
        log_level=log_level,
    )
    from dodo_transform import service  # FastAPI and uvicorn load only for `serve`

    try:
        service.serve(settings)
    except (ConfigError, StorageError) as error:
        fail(str(error))


@app.command()
def send(
    event: Annotated[Path, typer.Argument(help="A webhook body to sign and send.")],
    server: ServerOption = None,
    url: Annotated[
        str | None, typer.Option(help="The full webhook URL, instead of --server.")
    ] = None,
    webhook_id: Annotated[
        str | None, typer.Option("--id", help="The webhook-id [a new one].")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="The service's data dir, for its signing secret.")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="A NAME=value settings file.")] = None,
) -> None:
    """Sign EVENT with the configured secret and post it, as Dodo would."""
    settings = settings_from(config, data_dir=data_dir)
    body = read_event(event).body.encode("utf-8")
    try:
        secrets, _ = signing_secrets(settings, create=False)
    except ConfigError as error:
        fail(str(error))
    target = url or base_url(settings, server) + WEBHOOK_PATH
    try:
        headers = signing.sign(secrets[0], webhook_id or f"msg_{uuid.uuid4().hex}", body)
    except ConfigError as error:
        fail(f"DODO_WEBHOOK_SECRET: {error}")
    headers["Content-Type"] = "application/json"
    try:
        response = httpx.post(target, content=body, headers=headers, timeout=15)
    except httpx.HTTPError as error:
        fail(unreachable(target, error, server or url))
    out.print(f"{response.status_code} {response.text}", markup=False)
    if response.status_code == 401:
        used = (
            "DODO_WEBHOOK_SECRET"
            if settings.secrets
            else f"the secret in {settings.data_dir / SECRET_FILE}"
        )
        err.print(
            f"hint: this was signed with {used}; the service checks its own "
            "DODO_WEBHOOK_SECRET: give `send` the same one (in the environment or --config)",
            markup=False,
        )
    raise typer.Exit(0 if response.is_success else 1)


def base_url(settings: Settings, server: str | None) -> str:
    """Where the service is: --server (http:// if no scheme is given), else where `serve` with
    these settings listens."""
    if server:
        return (server if "://" in server else f"http://{server}").rstrip("/")
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{host}:{settings.port}"


def unreachable(base: str, error: httpx.HTTPError, server: str | None) -> str:
    """Why a client command found no service, and where else to look."""
    reason = str(error).rstrip(".") or type(error).__name__
    hint = (
        "is it running there?"
        if server
        else "is `dodo-transform serve` running? A service on another port or host: give "
        "--server URL (or --config with its settings file)"
    )
    return f"cannot reach {base}: {reason}; {hint}"


def admin_call(
    method: str,
    path: str,
    server: str | None,
    config: Path | None,
    **params: str | int | list[str] | None,
) -> object:
    """Ask the running service's admin API; its answer, or a one-line error and exit."""
    settings = settings_from(config)
    base = base_url(settings, server)
    headers = {}
    if settings.admin_token is not None:
        headers["Authorization"] = f"Bearer {settings.admin_token.get_secret_value()}"
    query = {name: value for name, value in params.items() if value is not None}
    try:
        response = httpx.request(method, base + path, params=query, headers=headers, timeout=60)
    except httpx.HTTPError as error:
        fail(unreachable(base, error, server))
    if response.status_code == 401:
        fail(
            f"{base} wants its admin token: set DODO_TRANSFORM_ADMIN_TOKEN to the service's, in "
            "the environment or in the settings file given with --config (e.g. "
            "--config /etc/dodo-transform/dodo-transform.env)",
            code=1,
        )
    try:
        answer = response.json() if response.content else None
    except ValueError:
        fail(
            f"{base} answered {path} with HTTP {response.status_code} and no JSON: is it "
            "dodo-transform? Give its base URL with --server, e.g. http://127.0.0.1:8000"
        )
    if not response.is_success:
        fail(f"{method} {path}: HTTP {response.status_code}: {_detail(answer)}", code=1)
    return answer


def _detail(answer: object) -> str:
    """An API error's `detail` as one line (FastAPI's 422 gives a list of problems)."""
    detail = answer.get("detail", answer) if isinstance(answer, dict) else answer
    if isinstance(detail, list):
        return "; ".join(
            f"{item.get('loc', ['?'])[-1]}: {item.get('msg', item)}"
            if isinstance(item, dict)
            else str(item)
            for item in detail
        )
    return str(detail)


@app.command()
def deliveries(
    status: Annotated[
        DeliveryStatus | None, typer.Option(help="Only this status, e.g. failed, dead.")
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=1000, help="At most this many, newest first.")
    ] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead.")] = False,
    server: ServerOption = None,
    config: ConfigOption = None,
) -> None:
    """List deliveries with their status, from the running service."""
    rows = admin_call(
        "GET",
        "/api/deliveries",
        server,
        config,
        status=status.value if status else None,
        limit=limit,
    )
    assert isinstance(rows, list)
    if as_json:
        print(json.dumps(rows))
        return
    if not rows:
        if status is not None:
            out.print(f"no {status.value} deliveries", markup=False)
        else:
            out.print("no deliveries yet: send one with `dodo-transform send FILE`")
        return
    table = table_of(
        "id", "updated", "webhook", "event", "transform", "message", "status", "tries", "error"
    )
    for row in rows:
        table.add_row(
            str(row["id"]),
            datetime.fromtimestamp(row["updated_at"]).strftime("%Y-%m-%d %H:%M:%S"),
            row["webhook_id"],
            row["event_type"],
            row["transform"],
            message_summary(row["request"]),
            row["status"],
            str(row["attempts"]),
            row["error"] or "",  # whole: the table wraps it
        )
    out.print(table, markup=False)


def message_summary(request: dict[str, Any] | None) -> str:
    """One delivery's message in a few words: `track "Payment Completed" cus_1` for Segment
    (its own message, also inside a batch), else the method and host (a path may hold a
    token)."""
    if request is None:
        return ""
    url, payload = request["url"], request["payload"]
    if not segment.is_segment_url(url):
        return f"{request['method']} {urlsplit(url).hostname or url}"
    kind = segment.call_type(url) or "?"
    if kind == "batch" and isinstance(payload, dict) and len(payload.get("batch") or ()) == 1:
        payload = payload["batch"][0]
        kind = str(payload.get("type", kind)) if isinstance(payload, dict) else kind
    if not isinstance(payload, dict):
        return kind
    words = [kind]
    if isinstance(payload.get("event"), str):
        words.append(json.dumps(payload["event"], ensure_ascii=False))
    who = payload.get("userId") or payload.get("anonymousId")
    if who:
        words.append(str(who))
    return " ".join(words)


@app.command()
def replay(
    delivery_id: Annotated[int | None, typer.Argument(help="The delivery to replay.")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Replay every failed delivery.")] = False,
    dead: Annotated[bool, typer.Option("--dead", help="Replay every dead delivery.")] = False,
    status: Annotated[
        str | None,
        typer.Option(
            help="Replay every delivery in this status: failed, dead, or a held one "
            "(invalid, blocked, dry_run) once its cause is fixed."
        ),
    ] = None,
    transform: Annotated[
        str | None, typer.Option(help="With a status: only this transform's deliveries.")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="With a status: only events received since, e.g. 2026-10-01 (UTC)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
    server: ServerOption = None,
    config: ConfigOption = None,
) -> None:
    """Re-run the current transform on the stored event of a failed, dead or held delivery."""
    chosen = [name for name, on in (("failed", failed), ("dead", dead)) if on]
    if status is not None:
        chosen.append(status)
    if delivery_id is not None and chosen:
        fail("give a delivery id or a status (--failed, --dead, --status STATUS), not both")
    if delivery_id is None and len(chosen) != 1:
        fail("give a delivery id, or one of --failed, --dead, --status STATUS")
    if delivery_id is not None:
        if transform is not None or since is not None:
            fail("--transform and --since choose deliveries by status; not with a delivery id")
        one = admin_call("POST", f"/api/deliveries/{delivery_id}/replay", server, config)
        assert isinstance(one, dict)
        if as_json:
            print(json.dumps(one))
        elif one["queued"]:
            out.print(f"delivery {delivery_id}: replay queued; the worker runs it shortly")
        else:
            statuses = ", ".join(one["statuses"]) or "nothing to deliver"
            out.print(f"delivery {delivery_id} replayed: {statuses}", markup=False)
        return
    bulk = admin_call(
        "POST", "/api/replay", server, config, status=chosen[0], transform=transform, since=since
    )
    assert isinstance(bulk, dict)
    ids = bulk["replayed"]
    if as_json:
        print(json.dumps(bulk))
    elif not ids:
        out.print(f"no {chosen[0]} deliveries to replay", markup=False)
    else:
        out.print(
            f"asked the worker to replay {len(ids)} {chosen[0]} "
            f"deliver{'y' if len(ids) == 1 else 'ies'}; follow them with"
            " `dodo-transform deliveries`",
            markup=False,
        )


@app.command()
def backfill(
    transform: Annotated[str, typer.Argument(help="The transform to run, e.g. segment.")],
    since: Annotated[
        str | None,
        typer.Option(help="Only events received since, e.g. 2026-10-01 (UTC) [all stored]."),
    ] = None,
    event_type: Annotated[
        list[str] | None,
        typer.Option("--type", help="Only this event type, e.g. payment.succeeded; repeatable."),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Start without asking.")] = False,
    server: ServerOption = None,
    config: ConfigOption = None,
) -> None:
    """Run TRANSFORM over the stored events it has no delivery for (a transform added later),
    paced by the rate limit and dated when each event happened. Counts them first."""
    scope = {"transform": transform, "since": since, "type": event_type or None}
    counted = admin_call("POST", "/api/backfills", server, config, dry_run="true", **scope)
    assert isinstance(counted, dict)
    total = counted["remaining_total"]
    if not total:
        out.print(
            f"nothing to backfill: every stored event in scope has a delivery from {transform}"
        )
        return
    by_type = ", ".join(f"{n} {kind}" for kind, n in counted["remaining"].items())
    events_ = "1 stored event has" if total == 1 else f"{total} stored events have"
    out.print(f"{events_} no delivery from {transform}: {by_type}", markup=False)
    if not yes:
        if not sys.stdin.isatty():
            out.print("run again with --yes to backfill them")
            return
        if not typer.confirm(f"Run {transform} on {'it' if total == 1 else 'them'} now?"):
            raise typer.Exit(1)
    started = admin_call("POST", "/api/backfills", server, config, **scope)
    assert isinstance(started, dict)
    out.print(
        f"backfill {started['id']} started; the worker paces it to the rate limit. Follow it "
        "with `dodo-transform status`",
        markup=False,
    )


@app.command()
def status(server: ServerOption = None, config: ConfigOption = None) -> None:
    """The running service at a glance: ready or why not, live or dry run, work by status."""
    answer = admin_call("GET", "/api/status", server, config)
    assert isinstance(answer, dict)
    out.print("ready" if answer["ready"] else "NOT READY", markup=False)
    for problem in answer["problems"]:
        out.print(f"  problem: {problem}", markup=False)
    if answer.get("settings_error"):
        out.print(f"transforms.toml: {answer['settings_error']}", markup=False)
    out.print(
        "mode: "
        + (
            "DRY RUN (no SEGMENT_WRITE_KEY: Segment calls of transforms without a write_key of"
            " their own are recorded, not sent)"
            if answer["dry_run"]
            else "live"
        )
    )
    out.print(f"events waiting for transforms: {answer['pending_events']}")
    counts = answer["deliveries"] or {"none yet": 0}
    out.print("deliveries: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    for paused in answer.get("paused_destinations", []):
        out.print(paused_line(paused), markup=False)
    backfills = admin_call("GET", "/api/backfills", server, config, limit=5)
    assert isinstance(backfills, list)
    for shown in backfills:
        out.print(backfill_line(shown), markup=False)
    show_transforms(admin_call("GET", "/api/transforms", server, config))


def paused_line(shown: dict[str, Any]) -> str:
    """A destination its circuit breaker holds paused, for `status`."""
    probe = datetime.fromtimestamp(shown["next_probe_at"]).strftime("%H:%M:%S")
    return (
        f"PAUSED {shown['destination']} (transform {shown['transform']}): {shown['waiting']}"
        f" deliveries wait; last error: {shown['last_error']}; next probe at {probe}, it"
        " resumes at its first answer"
    )


def backfill_line(shown: dict[str, Any]) -> str:
    started = datetime.fromtimestamp(shown["created_at"]).strftime("%Y-%m-%d %H:%M")
    head = f"backfill {shown['id']} of {shown['transform']} (started {started}): "
    if shown["error"]:
        return head + f"stopped after {shown['ran']} events: {shown['error']}"
    if shown["done_at"] is not None:
        return head + f"done, {shown['ran']} events"
    return head + f"{shown['ran']} events run, {shown['remaining_total']} to go"


@app.command(name="transforms")
def list_transforms(server: ServerOption = None, config: ConfigOption = None) -> None:
    """The loaded transforms and their state: live, broken, quarantined or disabled."""
    show_transforms(admin_call("GET", "/api/transforms", server, config))


def show_transforms(rows: object) -> None:
    assert isinstance(rows, list)
    table = table_of("transform", "state", "version", "detail")
    for row in rows:
        state, detail = transform_state(row)
        table.add_row(row["name"], state, row["version"] or "", detail)
    out.print(table, markup=False)


def transform_state(row: dict[str, Any]) -> tuple[str, str]:
    """(state, detail) as a person reads them; the order says which state wins."""
    if row.get("load_error") and row.get("version") is None:
        return "broken", str(row["load_error"])
    if row.get("quarantined"):
        return "quarantined", (
            f"hit its limits on {STRIKES} events in a row: fix the file, then replay"
        )
    notes = [str(warning) for warning in row.get("warnings") or ()]
    if row.get("load_error"):
        notes.insert(0, f"the file does not load: {row['load_error']}")
    if not row.get("enabled", True):
        return "disabled", "; ".join(["enabled = false in transforms.toml", *notes])
    if row.get("load_error"):
        notes[0] = "the last good version runs; " + notes[0]
    return "live", "; ".join(notes)


@app.command()
def events(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 20,
    server: ServerOption = None,
    config: ConfigOption = None,
) -> None:
    """Recent events, newest first, with what became of each."""
    rows = admin_call("GET", "/api/events", server, config, limit=limit)
    assert isinstance(rows, list)
    if not rows:
        out.print("no events yet: send one with `dodo-transform send FILE`")
        return
    table = table_of("id", "received", "webhook", "event", "deliveries")
    for row in rows:
        outcomes = ", ".join(f"{d['transform']}: {d['status']}" for d in row["deliveries"])
        table.add_row(
            str(row["id"]),
            datetime.fromtimestamp(row["received_at"]).strftime("%Y-%m-%d %H:%M:%S"),
            row["webhook_id"],
            row["event_type"],
            outcomes or "(not transformed yet)",
        )
    out.print(table, markup=False)


@app.command()
def show(
    event_id: Annotated[int, typer.Argument(help="The event's id (see `events`).")],
    server: ServerOption = None,
    config: ConfigOption = None,
) -> None:
    """One event: its body, and every delivery made from it with its attempts."""
    event = admin_call("GET", f"/api/events/{event_id}", server, config)
    assert isinstance(event, dict)
    out.print(f"event {event['id']}: {event['event_type']} ({event['webhook_id']})", markup=False)
    out.print(event["body"], markup=False)
    for delivery in event["deliveries"]:
        out.print(
            f"\ndelivery {delivery['id']}: {delivery['transform']} -> {delivery['status']}"
            + (f" ({delivery['error']})" if delivery["error"] else ""),
            markup=False,
        )
        request = delivery["request"]
        if request:
            out.print(f"  {request['method']} {request['url']}", markup=False)
            out.print(json.dumps(request["payload"], indent=2, ensure_ascii=False), markup=False)
        if delivery.get("sent_headers"):
            sent = ", ".join(f"{k}: {v}" for k, v in sorted(delivery["sent_headers"].items()))
            out.print(f"  sent with headers {sent}", markup=False)
        for attempt in delivery["attempt_log"]:
            when = datetime.fromtimestamp(attempt["at"]).strftime("%H:%M:%S")
            result = attempt["error"] or f"HTTP {attempt['status_code']}"
            out.print(f"  attempt at {when}: {result} ({attempt['duration_ms']:.0f} ms)")


def main() -> None:
    app()
