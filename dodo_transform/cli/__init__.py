"""The `dodo-transform` command line.

Every user mistake (a missing file, bad JSON, a broken handler) ends in a
one-line message and an exit code, never a traceback:
0 success, 1 a handler or check failed, 2 unusable input or settings.

Two kinds of command: `local.py` works here, on this machine's files, settings and database
(`test`, `check`, `types`, `serve`, `send`, `migrate`); `admin.py` asks a running service's
admin API (`deliveries`, `replay`, `backfill`, `status`, `transforms`, `events`, `show`).
Both print through `output.py` and take their settings through `options.py`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated

import typer

from dodo_transform import __version__
from dodo_transform.cli import admin, local
from dodo_transform.cli.output import out

__all__ = ["app", "main"]

app = typer.Typer(
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    # Plain help: rich markup would eat the "[default]" hints and show flags as "<bool>".
    rich_markup_mode=None,
    no_args_is_help=True,
    help="Run Dodo Payments webhook transformations and deliver them to Segment.",
)


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


def summary(command: Callable[..., None]) -> str:
    """A command's help as `dodo-transform --help` lists it: its docstring's first paragraph,
    whole (click would cut it at 45 characters, mid-sentence)."""
    first = inspect.cleandoc(command.__doc__ or "").split("\n\n", 1)[0]
    return " ".join(first.split())


# The commands, in the order `--help` lists them.
COMMANDS: tuple[tuple[str, Callable[..., None]], ...] = (
    ("test", local.test),
    ("check", local.check),
    ("types", local.types),
    ("serve", local.serve),
    ("send", local.send),
    ("migrate", local.migrate),
    ("backup", local.backup),
    ("deliveries", admin.deliveries),
    ("replay", admin.replay),
    ("replays", admin.replays),
    ("backfill", admin.backfill),
    ("erase", admin.erase),
    ("audit", admin.audit),
    ("status", admin.status),
    ("transforms", admin.list_transforms),
    ("events", admin.events),
    ("show", admin.show),
)
for name, command in COMMANDS:
    app.command(name=name, short_help=summary(command))(command)


def main() -> None:
    app()
