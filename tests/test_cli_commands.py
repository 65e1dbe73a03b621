"""The command line's face: every command `dodo-transform --help` lists, in its order (the
local ones, then the admin client's), whichever module of dodo_transform/cli/ holds it."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from dodo_transform.cli import app

COMMANDS = ["test", "check", "types", "serve", "send", "migrate", "backup"]  # work here
COMMANDS += [
    "deliveries",
    "replay",
    "replays",
    "backfill",
    "erase",
    "audit",
    "status",
    "transforms",
    "events",
    "show",
]


def test_the_help_lists_every_command_local_ones_first() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    listed = re.findall(r"^  ([a-z]+) ", result.output.split("Commands:", 1)[1], re.MULTILINE)
    assert listed == COMMANDS
