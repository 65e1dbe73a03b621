"""What `serve` checks and says before the service starts.

`preflight` refuses settings that cannot work before anything is created (a
missing folder, a bad transforms.toml, a busy port); `claim_data_dir` keeps a
second `serve` off the same data dir; `banner` tells the person who started it
where it listens, what mode it is in, and a `send` to try that works as printed,
and warns (once, as the banner is printed once) of a settings file whose secrets
other users can read or a `git add` would take along.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from dodo_transform import signing
from dodo_transform.errors import ConfigError
from dodo_transform.outgoing.destination import destination_of
from dodo_transform.pipeline.assembly import retention_by_status
from dodo_transform.settings import (
    DEFAULT_ADDRESS,
    DEFAULT_CONFIG_FILE,
    DEFAULT_DATA_DIR,
    WEBHOOK_PATH,
    Settings,
    secrets_in,
)
from dodo_transform.store import is_postgres
from dodo_transform.transforms import checks
from dodo_transform.transforms.settings import read_settings
from dodo_transform.webhook_secret import SECRET_FILE

LOCK_FILE = "serve.lock"  # in the data dir: held by the `serve` that uses it (its pid inside)


def banner(settings: Settings, *, created_secret: bool) -> str:
    """What a person starting the service needs to know, and what to do next."""
    base = f"http://{settings.host}:{settings.port}"
    where = [
        f"  mode:       {mode(settings)}",
        f"  transforms: {settings.transforms.resolve()}",
        f"  data:       {settings.data_dir.resolve()}",
        f"  database:   {database(settings)}",
    ]
    if settings.role == "worker":
        # It answers health, readiness and metrics only: no console, webhooks or admin API to
        # point at, and no `send` that would work against it.
        return "\n".join(
            [
                f"dodo-transform is running on {base} as a worker: it takes no webhooks and"
                " serves no console (the ingest instances do)",
                f"  health:     {base}/healthz, {base}/readyz, {base}/metrics",
                *where,
            ]
        )
    lines = [
        f"dodo-transform is running on {base}",
        f"  console:    {base}/",
        f"  webhooks:   {base}{WEBHOOK_PATH} (local: give Dodo your public HTTPS URL,"
        " see docs/going-live.md)",
        *where,
    ]
    if not settings.secrets:
        # Never printed: logs are kept (journald); the file is readable by the owner only.
        made = "a new signing secret" if created_secret else "the signing secret"
        lines.append(
            f"  signing:    {made} for local trials is in {settings.data_dir / SECRET_FILE};"
            " for Dodo, set DODO_WEBHOOK_SECRET to the secret its dashboard shows"
        )
    if settings.test_secrets:
        lines.append(
            "  test mode:  webhooks signed with DODO_WEBHOOK_TEST_SECRET (Dodo's test-mode"
            " endpoint) are stored as test events, those with DODO_WEBHOOK_SECRET as live"
        )
    if settings.admin_token is None or not settings.admin_token.get_secret_value():
        lines.append(
            "  admin API:  loopback only, no proxies (set DODO_TRANSFORM_ADMIN_TOKEN to use it"
            " behind a proxy)"
        )
    if any(signing.malformed(secret) for secret in settings.secrets):
        lines.append(
            "  WARNING:    DODO_WEBHOOK_SECRET is not a whsec_... secret as Dodo's dashboard"
            " shows it (base64); every webhook will likely be refused: copy it again"
        )
    lines += [f"  WARNING:    {warning}" for warning in settings_file_warnings(settings)]
    if not any(settings.transforms.glob("*.js")):
        lines.append(
            f"  WARNING:    no .js handlers in {settings.transforms}: nothing will be delivered"
            " until you add one (see README)"
        )
    lines.append("  try it:     " + shlex.join(try_it(settings)))
    return "\n".join(lines)


def mode(settings: Settings) -> str:
    """Live or dry run, and every host requests go to: Segment's, each transform's `url`, and
    the extra hosts handlers may name themselves."""
    segment_calls = (
        "DRY RUN: no SEGMENT_WRITE_KEY, so Segment calls are recorded, not sent (a transform"
        " with a write_key of its own in transforms.toml still sends)"
        if settings.dry_run
        else f"LIVE: delivering to Segment at {settings.segment_base_url}"
    )
    others = [f"{name} to {host}" for name, host in destination_hosts(settings).items()]
    if settings.extra_allowed_hosts:
        others.append("handlers to " + ", ".join(sorted(settings.extra_allowed_hosts)))
    return segment_calls + "".join(f"; {other}" for other in others)


def destination_hosts(settings: Settings) -> dict[str, str]:
    """Each enabled transform's `url` as its origin (never a path or a password: a webhook
    URL's token lives there), by transform name."""
    try:
        tables = read_settings(settings.transforms, settings.variables(), unset_ok=True)
    except ConfigError:
        return {}  # preflight said what is wrong; the banner names what it can
    hosts = {name: destination_of(table.target_url) for name, table in sorted(tables.items())}
    return {name: host for name, host in hosts.items() if host and tables[name].enabled}


def database(settings: Settings) -> str:
    """Which database the service uses, its password hidden."""
    if is_postgres(settings.database_url):
        from dodo_transform.store.postgres import shown  # psycopg loads only for PostgreSQL

        return f"PostgreSQL {shown(str(settings.database_url))}"
    return f"SQLite {settings.sqlite_path.resolve()}"


def settings_file_warnings(settings: Settings) -> list[str]:
    """What is wrong with where the settings file and the data dir keep secrets (none:
    nothing)."""
    warnings = []
    data = settings.data_dir
    if settings.database_url is None and data.is_dir():
        tree = unignored_in_git(data)
        if tree is not None:
            warnings.append(
                f"the data dir {data} (customers' emails, the signing secret) is not ignored by"
                f" the git work tree {tree}: add it to .gitignore"
            )
    file = settings.config_file
    if file is None or not file.is_file():
        return warnings
    held = secrets_in(file)
    if not held:
        return warnings
    named = ", ".join(held[:3]) + (" ..." if len(held) > 3 else "")
    if file.stat().st_mode & 0o044:
        warnings.append(
            f"{file} holds secrets ({named}) that other users can read: chmod 600 {file}"
        )
    tree = unignored_in_git(file)
    if tree is not None:
        warnings.append(
            f"{file} holds secrets ({named}) and is not ignored by the git work tree {tree}:"
            f" one `git add` would commit them; add {file.name} to .gitignore"
        )
    return warnings


def unignored_in_git(file: Path) -> Path | None:
    """The git work tree `file` sits in, if that tree does not ignore it (None: no work tree,
    no git, or ignored)."""
    folder = file.resolve().parent
    try:
        top = _git(folder, "rev-parse", "--show-toplevel")
        if top.returncode != 0:
            return None
        ignored = _git(folder, "check-ignore", "--quiet", "--", file.name)
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(top.stdout.strip()) if ignored.returncode == 1 else None


def _git(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10
    )


def try_it(settings: Settings) -> list[str]:
    """A `send` that works as printed, from the shell that started the service: it finds the
    example, the service, and the secret the service checks."""
    command = [*command_name(), "send", _example_path()]
    if (settings.host, settings.port) != DEFAULT_ADDRESS:
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
        command += ["--server", f"http://{host}:{settings.port}"]
    if settings.config_file is not None and settings.config_file != DEFAULT_CONFIG_FILE:
        command += ["--config", str(settings.config_file)]  # its secret, if it sets one
    if not settings.secrets and settings.data_dir != DEFAULT_DATA_DIR:
        command += ["--data-dir", str(settings.data_dir)]  # the secret made there
    return command


def _example_path() -> str:
    """The example payment, as a path from here (the checkout's, else the installed copy)."""
    local = Path("examples/events/payment.succeeded.json")
    folder = checks.examples_folder()
    if local.is_file() or folder is None:
        return str(local)
    return str(folder / "payment.succeeded.json")


def command_name() -> list[str]:
    """This command as the shell that started it can run it again: `dodo-transform` when that
    is on the PATH, else the path it was started by (an inactive venv's .venv/bin/...)."""
    script = Path(sys.argv[0])
    on_path = shutil.which("dodo-transform")
    if script.name == "dodo-transform":
        same = on_path is not None and Path(on_path).resolve() == script.resolve()
        return ["dodo-transform" if same else str(script)]
    return ["dodo-transform"] if on_path else [sys.executable, "-m", "dodo_transform"]


def preflight(settings: Settings) -> None:
    """Refuse settings that cannot work before anything is created (secret, data dir, store)."""
    folder = settings.transforms
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise ConfigError(
            f"transforms folder {folder} {what}: point --transforms (DODO_TRANSFORM_TRANSFORMS)"
            " at the folder of handler .js files"
        )
    # A mistake in transforms.toml at startup stops it: while the service runs, a bad edit
    # keeps the settings in force (see Registry.reload), but at startup there are none, and a
    # misspelt `enabled = false` must not start a transform meant to be off. Variables its
    # headers name may be set later: that transform waits, the others start.
    read_settings(folder, settings.variables(), unset_ok=True)
    retention_by_status(settings.retention_by_status)  # a misspelt status stops it here
    data = settings.data_dir
    if data.exists() and not data.is_dir():
        raise ConfigError(
            f"data dir {data} is a file: point --data-dir (DODO_TRANSFORM_DATA_DIR) at a folder"
        )
    existing = data
    while not existing.exists():
        existing = existing.parent
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(
            f"data dir {data} cannot be written ({existing} is read-only for this user): point"
            " --data-dir (DODO_TRANSFORM_DATA_DIR) at a writable folder"
        )
    if settings.role != "worker":
        _check_port_free(settings.host, settings.port)


def _check_port_free(host: str, port: int) -> None:
    """A port in use is a one-line error now, not a banner followed by uvicorn's exit."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise ConfigError(f"cannot listen on {host}: {error}; check --host") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as error:
            reason = "is in use" if error.errno == errno.EADDRINUSE else f": {error.strerror}"
            raise ConfigError(
                f"port {port} on {host} {reason} (another dodo-transform serve?): stop it, or"
                " pick another port with --port (DODO_TRANSFORM_PORT)"
            ) from None


def claim_data_dir(settings: Settings) -> int:
    """Lock the data dir for this process's life, so a second `serve` on it is refused: two
    instances on one data dir would share one SQLite file and one instance name. The
    returned descriptor holds the lock (the kernel lets it go when the process ends)."""
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = settings.data_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise ConfigError(
            f"data dir {settings.data_dir} is in use by another dodo-transform serve (pid"
            f" {holder}): stop it, or give this one its own --data-dir (several instances share"
            " events through PostgreSQL: see docs/scaling.md)"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd
