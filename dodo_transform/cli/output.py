"""What every command prints with, and how it fails: one line on stderr and an exit code."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from rich.table import Table

out = Console(highlight=False, soft_wrap=True)  # lines wrap at the terminal, not mid-path
err = Console(stderr=True, highlight=False, soft_wrap=True)


def table_of(*headers: str) -> Table:
    """A table whose cells wrap rather than hide what does not fit the terminal."""
    table = Table()
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"error: {message}", markup=False)
    raise typer.Exit(code)
