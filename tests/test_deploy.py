"""The shipped systemd unit is one systemd accepts as written, runs `serve` with flags it has,
is hardened as docs/going-live.md says, and is the one unit the docs describe."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from dodo_transform.testing import free_port, wait_until
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


# --- the documented install, followed as far as this machine allows --------------------------

# What a test cannot do here: install packages, add a system user, clone and pip-install a
# second copy (the suite's own install stands in), edit by hand, or run systemd.
NOT_HERE = (
    "apt-get ",
    "useradd ",
    "git ",
    "python3 -m venv",
    "editor ",
    "systemctl ",
    "journalctl ",
    "systemd-analyze ",  # needs the installed command; the unit is verified above instead
)


def install_steps(guide: str) -> list[str]:
    """The shell lines of going-live.md's step 4 install block, comments left out."""
    section = guide[guide.index("## 4. Run it as a service") :]
    block = re.search(r"```sh\n(.*?)\n```", section, re.DOTALL)
    assert block is not None
    return [line for line in block.group(1).splitlines() if line and not line.startswith("#")]


def test_the_documented_install_runs_as_far_as_this_machine_allows(tmp_path: Path) -> None:
    """Step 4's commands, rooted in a temporary folder, as the current user: the folders and the
    settings file get the modes the guide promises, the unit's own command line starts the
    service on them with the unit's umask, and what it writes is readable by it alone."""
    root = tmp_path / "root"
    (root / "opt" / "dodo-transform").mkdir(parents=True)
    shutil.copytree(
        ROOT / "tests" / "fixtures" / "transforms", root / "opt/dodo-transform/transforms"
    )
    shutil.copytree(ROOT / "deploy", root / "opt/dodo-transform/deploy")
    (root / "etc/systemd/system").mkdir(parents=True)
    ran, skipped = [], []
    for line in install_steps((ROOT / "docs" / "going-live.md").read_text()):
        if line.startswith(NOT_HERE) or "/.venv/bin/" in line:
            skipped.append(line)
            continue
        here = line.replace("-o dodo-transform -g dodo-transform ", "")
        for folder in ("/opt/", "/etc/", "/var/"):
            here = here.replace(f" {folder}", f" {root}{folder}")
        subprocess.run(["bash", "-euc", here], check=True, cwd=root, timeout=60)
        ran.append(line)
    assert len(ran) >= 4 and any("dodo-transform.env" in line for line in ran), ran
    settings = root / "etc/dodo-transform/dodo-transform.env"
    assert (root / "etc/dodo-transform").stat().st_mode & 0o777 == 0o700
    assert settings.stat().st_mode & 0o777 == 0o600
    handlers = sorted((root / "etc/dodo-transform/transforms").glob("*.js"))
    assert len(handlers) == 3 and all(h.stat().st_mode & 0o777 == 0o600 for h in handlers)
    assert (root / "etc/systemd/system" / UNIT.name).is_file()
    settings.write_text("DODO_WEBHOOK_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n")

    unit = settings_of(UNIT.read_text())
    port = free_port()
    command = (
        unit["ExecStart"]
        .replace("%i", str(port))
        .replace(
            "/opt/dodo-transform/.venv/bin/dodo-transform", f"{sys.executable} -m dodo_transform"
        )
    )
    for folder in ("/etc/", "/var/"):
        command = command.replace(f" {folder}", f" {root}{folder}")
    (root / "var/lib/dodo-transform").mkdir(parents=True)  # what StateDirectory= makes
    with subprocess.Popen(
        command.split(),
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        umask=int(unit["UMask"], 8),
    ) as service:
        try:
            wait_until(lambda: _ready(port), timeout=60, what="the service on the unit's command")
        finally:
            service.terminate()
            shown, _ = service.communicate(timeout=60)
    # uvicorn exits by the signal it stopped for, once it has shut down.
    assert service.returncode in (0, -signal.SIGTERM), shown
    banner = shown.split("\n{", 1)[0]
    assert "WARNING" not in banner, banner  # the settings file is the owner's alone
    data = root / "var/lib/dodo-transform" / str(port)
    assert data.stat().st_mode & 0o777 == 0o700
    written = [p for p in data.iterdir() if p.is_file()]
    assert written and all(p.stat().st_mode & 0o077 == 0 for p in written), written
    assert skipped  # said, not hidden: what needs root and systemd is left to the reader


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
