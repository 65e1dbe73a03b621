"""The command line in this process, through typer's `CliRunner`: the app the console script
runs, its exit code and its two streams, without starting Python again.

A few tests still run the real console script (`python -m dodo_transform`), where the process is
what they are about: the README's commands as printed, the banner's suggestion, a traceback that
must never reach a user's terminal.
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from dodo_transform.cli import app


@dataclass(frozen=True)
class Ran:
    """What one command did: as `subprocess.CompletedProcess` names it."""

    returncode: int
    stdout: str
    stderr: str


def run(*args: str | Path, cwd: Path | None = None, env: Mapping[str, str] | None = None) -> Ran:
    """`dodo-transform ARGS` run in `cwd` (where it looks for its default files) with `env`
    added to the environment. An exception that escapes the command fails the test: a user
    would have seen it as a traceback, where every mistake must be one line."""
    with contextlib.chdir(cwd) if cwd is not None else contextlib.nullcontext():
        result = CliRunner().invoke(app, [str(arg) for arg in args], env=dict(env or {}))
    escaped = result.exception
    if escaped is not None and not isinstance(escaped, SystemExit):
        shown = "".join(traceback.format_exception(escaped))
        raise AssertionError(f"dodo-transform {args} ended in a traceback:\n{shown}")
    return Ran(result.exit_code, result.stdout, result.stderr)
