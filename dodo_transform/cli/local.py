"""The commands that work here, on this machine's files and settings: `test` and `check` run
transforms on sample events, `types` writes TypeScript declarations for editors, `serve` runs
the service, `send` signs an event and posts it as Dodo would."""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Annotated

import httpx
import typer

from dodo_transform import signing, startup
from dodo_transform.cli.admin import stored_event
from dodo_transform.cli.options import (
    ConfigOption,
    ServerOption,
    base_url,
    settings_from,
    unreachable,
)
from dodo_transform.cli.output import err, fail, out, table_of
from dodo_transform.errors import ConfigError, HandlerError, PayloadError, StorageError
from dodo_transform.outgoing.destination import Allowlist
from dodo_transform.settings import WEBHOOK_PATH, Settings
from dodo_transform.store import is_postgres, upgrade
from dodo_transform.store.backup import backup_sqlite
from dodo_transform.transforms import checks, event_types, sandbox_processes
from dodo_transform.transforms.engine import Outcome, OutcomeKind
from dodo_transform.transforms.event import Event
from dodo_transform.webhook_secret import SECRET_FILE, signing_secrets


def read_event(path: Path) -> Event:
    try:
        return Event.from_body(path.read_bytes(), webhook_id=f"msg_{path.stem}")
    except OSError as error:
        fail(f"cannot read event {path}: {error.strerror or error}")
    except PayloadError as error:
        fail(f"{path}: {error}")


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
    Nothing is stored or sent; the handler runs in a sandbox process with the service's
    limits."""
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


def trier_from(settings: Settings) -> checks.Trier:
    """Runs transforms as the service configured by `settings` would: its allowlist, its
    limits, in a sandbox process with its backstop."""
    # A stuck handler's outcome says what the backstop did; its log line is for the service's
    # log, not for a terminal (without a handler, Python would print it bare on stderr).
    logging.getLogger(sandbox_processes.log.name).addHandler(logging.NullHandler())
    return checks.Trier(
        Allowlist(settings.segment_base_url, settings.extra_allowed_hosts),
        environ=settings.variables(),
        limits=settings.limits,
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
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show every run, ok and skipped ones too.")
    ] = False,
) -> None:
    """Run every transform on every event; fail on an error or a golden mismatch. Shows the
    runs that need a look (errors, changes, new goldens) and counts the rest."""
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
    shown = [row for row in rows if verbose or _needs_a_look(row)]
    if shown:
        table = table_of("transform", "event", "outcome", "check", "detail")
        for row in shown:
            table.add_row(row.transform, row.event, row.outcome, row.verdict.value, row.detail)
        out.print(table)
    show_check_warnings(rows)
    out.print(check_summary(rows, verbose))
    raise typer.Exit(1 if any(row.failed for row in rows) else 0)


def _needs_a_look(row: checks.Row) -> bool:
    """A failed run, or a new or updated golden of a run that delivers something."""
    return row.failed or (row.verdict is not checks.Verdict.SAME and row.outcome != "skipped")


def check_summary(rows: list[checks.Row], verbose: bool) -> str:
    """`376 runs: 370 ok, 6 new; 300 skipped their event`, and how to see what is not shown."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.verdict.value] = counts.get(row.verdict.value, 0) + 1
    ok = counts.pop(checks.Verdict.SAME.value, 0)
    parts = [f"{ok} ok", *(f"{n} {verdict}" for verdict, n in sorted(counts.items()))]
    skipped = sum(row.outcome == "skipped" and not row.failed for row in rows)
    line = f"{len(rows)} runs: " + ", ".join(parts)
    if skipped:
        line += f"; {skipped} skipped their event"
    hidden = sum(not _needs_a_look(row) for row in rows)
    if hidden and not verbose:
        line += f" ({hidden} runs not shown: --verbose shows every run)"
    return line


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


def types(
    out_file: Annotated[
        Path, typer.Option("--out", help="Where to write the declarations.")
    ] = Path("transforms/dodo-transform.d.ts"),
) -> None:
    """Write TypeScript declarations (.d.ts) of the webhook object and Dodo's event types, so
    that VS Code completes and checks handler files (with // @ts-check)."""
    if not out_file.parent.is_dir():
        fail(f"{out_file.parent} is not a folder")
    try:
        count = event_types.write_declarations(out_file)
    except OSError as error:
        fail(f"cannot write {out_file}: {error.strerror or error}")
    out.print(f"wrote {out_file}: the webhook object and {count} event types", markup=False)
    out.print("at the top of a handler file beside it:", markup=False)
    for line in event_types.usage(out_file.name):
        out.print(f"  {line}", markup=False)


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


def migrate(
    config: Annotated[Path | None, typer.Option(help="A NAME=value settings file.")] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="The data dir, for its SQLite file [./.dodo-transform].")
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(help="postgresql://... [SQLite in the data dir].")
    ] = None,
) -> None:
    """Bring the database to this release's schema (`serve` does the same when it starts).
    Run it after installing a new release, before restarting the instances."""
    settings = settings_from(config, data_dir=data_dir, database_url=database_url)
    where = startup.database(settings)
    try:
        done = upgrade.migrate(settings)
    except (ConfigError, StorageError) as error:
        fail(str(error))
    if done.before == done.after:
        out.print(f"{where}: already at schema version {done.after}", markup=False)
    else:
        out.print(
            f"{where}: schema version {done.before} -> {done.after}"
            f" ({done.after - done.before} migrations applied)",
            markup=False,
        )


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
    test_mode: Annotated[
        bool,
        typer.Option("--test", help="Sign with DODO_WEBHOOK_TEST_SECRET, as test mode would."),
    ] = False,
) -> None:
    """Sign EVENT with the configured secret and post it, as Dodo would."""
    settings = settings_from(config, data_dir=data_dir)
    body = read_event(event).body.encode("utf-8")
    target = url or base_url(settings, server) + WEBHOOK_PATH
    try:
        secrets, _ = signing_secrets(settings, create=False)
    except ConfigError as error:
        fail(str(error))
    if test_mode:
        if not settings.test_secrets:
            fail("--test signs with DODO_WEBHOOK_TEST_SECRET, which is not set")
        secrets = settings.test_secrets
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
    if response.status_code == 404:
        err.print(
            f"hint: nothing takes webhooks at {target}: give --server the service's base URL"
            f" (the banner's first line, e.g. http://127.0.0.1:8000) or --url the whole webhook"
            " URL; an instance with --role worker takes no webhooks",
            markup=False,
        )
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


def backup(
    file: Annotated[Path, typer.Argument(help="The copy to write, e.g. backup-2026-10-01.db.")],
    data_dir: Annotated[
        Path | None, typer.Option(help="The service's data dir, where its store is.")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="A NAME=value settings file.")] = None,
) -> None:
    """Copy the SQLite store, consistently, while the service runs (SQLite's online backup).
    Restore: stop the service, put the copy in place of the store, start it (see
    docs/going-live.md)."""
    settings = settings_from(config, data_dir=data_dir)
    if is_postgres(settings.database_url):
        fail(
            "the store is PostgreSQL: back it up with pg_dump (e.g. pg_dump --format=custom"
            " --file=dodo.dump DATABASE), see docs/going-live.md"
        )
    try:
        made = backup_sqlite(settings.sqlite_path, file)
    except StorageError as error:
        fail(str(error))
    out.print(
        f"backed up {made.events} events ({made.size / 1024 / 1024:.1f} MiB) to {made.path}",
        markup=False,
    )
