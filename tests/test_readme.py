"""The README's commands are run here so that they cannot rot."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```sh\n(.*?)\n```", README, re.DOTALL)


def test_the_quickstart_has_exactly_two_commands_and_ci_runs_the_second() -> None:
    start = README.index("## Quickstart")
    quickstart = re.findall(
        r"```sh\n(.*?)\n```", README[start : README.index("\n## ", start + 1)], re.DOTALL
    )
    assert len(quickstart) == 2
    assert all("\n" not in command for command in quickstart)
    assert quickstart[0].endswith("dodo-transform serve")
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == quickstart[1]


def test_the_readme_try_commands_work() -> None:
    tried = [block for block in BLOCKS if block.startswith(".venv/bin/dodo-transform")]
    assert len(tried) == 2
    for command in tried:
        args = command.split()[1:]
        done = subprocess.run(
            [sys.executable, "-m", "dodo_transform", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
