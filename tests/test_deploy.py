"""The shipped systemd unit is one systemd accepts as written, runs `serve` with flags it has,
is hardened as docs/going-live.md says, and is the one unit the docs describe."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.command_line import run as cli
from tests.conftest import ROOT

UNIT = ROOT / "deploy" / "dodo-transform@.service"
DOCS = (ROOT / "docs" / "going-live.md", ROOT / "docs" / "scaling.md")


def settings_of(unit: str) -> dict[str, str]:
    """The unit's `Key=value` lines (continuations joined), by key."""
    joined = unit.replace("\\\n", " ")
    found = re.findall(r"^(\w+)=(.*)$", joined, re.MULTILINE)
    return {key: " ".join(value.split()) for key, value in found}


def test_the_systemd_unit_verifies_as_a_template_and_as_an_instance(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is missing (Debian's systemd package)")
        pytest.skip("no systemd-analyze here (Debian's systemd package)")
    # The unit names the install path of the guide; point it at this checkout's command.
    command = Path(sys.executable).with_name("dodo-transform")
    text = UNIT.read_text().replace("/opt/dodo-transform/.venv/bin/dodo-transform", str(command))
    template, instance = tmp_path / UNIT.name, tmp_path / "dodo-transform@8000.service"
    template.write_text(text)
    instance.write_text(text)
    for unit in (template, instance):
        done = subprocess.run(
            [analyze, "verify", str(unit)], capture_output=True, text=True, cwd=tmp_path, timeout=60
        )
        # systemd-analyze exits 0 even for unknown keys and bad values: its complaints are the
        # test.
        complaints = [line for line in done.stderr.splitlines() if unit.name in line]
        assert done.returncode == 0 and complaints == [], done.stderr


def test_the_unit_is_hardened_as_the_guide_says() -> None:
    unit = settings_of(UNIT.read_text())
    assert unit["User"] == "dodo-transform" and unit["Group"] == "dodo-transform"
    assert unit["NoNewPrivileges"] == "yes" and unit["ProtectSystem"] == "strict"
    assert unit["UMask"] == "0077"
    data_dir = re.search(r"--data-dir (\S+)", unit["ExecStart"])
    transforms = re.search(r"--transforms (\S+)", unit["ExecStart"])
    assert data_dir and transforms
    # Under ProtectSystem=strict only these are writable: the data dir, and the transforms
    # folder the console saves to.
    assert unit["ReadWritePaths"].split() == [data_dir.group(1), transforms.group(1)]
    assert unit["StateDirectory"] == "dodo-transform/%i"


def test_the_units_serve_command_uses_flags_serve_has() -> None:
    command = settings_of(UNIT.read_text())["ExecStart"]
    flags = re.findall(r"(--[a-z-]+)", command)
    assert command.split()[1] == "serve" and flags
    shown = cli("serve", "--help", env={"COLUMNS": "200"}).stdout
    for flag in flags:
        assert re.search(rf"{flag}\b", shown), flag


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_the_docs_describe_this_unit_and_no_other(doc: Path) -> None:
    text = doc.read_text()
    assert f"deploy/{UNIT.name}" in text
    assert "[Service]" not in text, f"{doc.name} holds a unit of its own: point at deploy/"
    unit = settings_of(UNIT.read_text())
    for path in re.findall(r"--(?:config|transforms) (\S+)", unit["ExecStart"]):
        assert path in text, f"{doc.name} does not name {path}, which the unit uses"
