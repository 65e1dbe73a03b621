"""The shipped systemd unit is one systemd accepts as written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

UNIT = ROOT / "deploy" / "dodo-transform.service"


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is missing (Debian's systemd package)")
        pytest.skip("no systemd-analyze here")
    # The unit names the install path of the guide; point it at this checkout's command.
    command = Path(sys.executable).with_name("dodo-transform")
    unit = tmp_path / "dodo-transform.service"
    unit.write_text(
        UNIT.read_text().replace("/opt/dodo-transform/.venv/bin/dodo-transform", str(command))
    )
    done = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    # systemd-analyze exits 0 even for unknown keys and bad values: its complaints are the test.
    complaints = [line for line in done.stderr.splitlines() if unit.name in line]
    assert done.returncode == 0 and complaints == [], done.stderr
