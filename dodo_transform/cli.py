"""The `dodo-transform` command line.

Every user mistake (a missing file, bad JSON, a broken handler) ends in a
one-line message and an exit code, never a traceback:
0 success, 1 a handler or check failed, 2 unusable input or settings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from dodo_transform import checks
from dodo_transform.engine import Event, Outcome, OutcomeKind
from dodo_transform.errors import ConfigError, HandlerError, PayloadError
from dodo_transform.registry import load_file

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Run Dodo Payments webhook transformations and deliver them to Segment.",
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)


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
    handler: Annotated[Path, typer.Argument(help="The transform file, e.g. transforms/segment.js")],
    event: Annotated[
        Path, typer.Argument(help="A webhook body, e.g. examples/events/payment.succeeded.json")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead.")] = False,
) -> None:
    """Run HANDLER on EVENT and show what would be sent (the dashboard's Test button)."""
    sample = read_event(event)
    if not handler.is_file():
        fail(f"cannot read handler {handler}: no such file")
    try:
        outcome = load_file(handler).run(sample)
    except HandlerError as error:
        outcome = Outcome(OutcomeKind.ERROR, error=str(error))
    except ConfigError as error:
        fail(str(error))
    if as_json:
        print(json.dumps(outcome.to_json(), ensure_ascii=False))
    else:
        show_outcome(outcome)
    raise typer.Exit(1 if outcome.kind is OutcomeKind.ERROR else 0)


def show_outcome(outcome: Outcome) -> None:
    colour = {"deliver": "green", "skipped": "yellow", "cancelled": "yellow"}.get(
        outcome.kind, "red"
    )
    out.print(f"outcome: [bold {colour}]{outcome.kind.value}[/]")
    if outcome.error:
        out.print(outcome.error, style="red", markup=False)
    for request in outcome.requests:
        shown = request.to_json()
        out.print(f"\n{shown['method']} {shown['url']}", style="bold", markup=False)
        for name, value in shown["headers"].items():
            out.print(f"  {name}: {value}", markup=False)
        out.print(json.dumps(shown["payload"], indent=2, ensure_ascii=False), markup=False)
    if outcome.logs:
        out.print("\nconsole:")
        for level, message in outcome.logs:
            out.print(f"  [{level}] {message}", markup=False)
    for warning in outcome.warnings:
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
    try:
        rows = list(checks.check(transforms, events, expected, update=update))
    except (PayloadError, ConfigError) as error:
        fail(str(error))
    table = Table("transform", "event", "outcome", "check", "detail")
    for row in rows:
        if row.outcome != "skipped" or row.failed:
            table.add_row(row.transform, row.event, row.outcome, row.verdict.value, row.detail)
    out.print(table)
    failed = sum(row.failed for row in rows)
    skipped = sum(row.outcome == "skipped" and not row.failed for row in rows)
    out.print(f"{len(rows)} runs, {failed} failed, {skipped} skipped rows not shown")
    raise typer.Exit(1 if failed else 0)


def main() -> None:
    app()
