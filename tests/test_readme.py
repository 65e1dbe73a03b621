"""The README's commands are run here so that they cannot rot."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import EXAMPLES, ROOT, shipped_transforms

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


def a_fresh_checkout(folder: Path) -> Path:
    """What the README's commands use of a fresh clone: the shipped transforms/ and examples/
    (the tests' own copies: the checkout's transforms/ is the user's to change)."""
    shipped_transforms(folder / "transforms")
    shutil.copytree(EXAMPLES, folder / "examples")
    return folder


def test_the_readme_try_commands_work(tmp_path: Path) -> None:
    tried = [block for block in BLOCKS if block.startswith(".venv/bin/dodo-transform")]
    assert len(tried) == 2
    checkout = a_fresh_checkout(tmp_path)
    for command in tried:
        args = command.split()[1:]
        done = subprocess.run(
            [sys.executable, "-m", "dodo_transform", *args],
            cwd=checkout,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
