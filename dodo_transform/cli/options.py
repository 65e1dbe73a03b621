"""What several commands share: the settings they run with (--config), where the running
service is (--server), and why it could not be reached."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import httpx
import typer

from dodo_transform.cli.output import err, fail
from dodo_transform.errors import ConfigError
from dodo_transform.settings import WEBHOOK_PATH, Settings, load_settings, unknown_names

ServerOption = Annotated[
    str | None,
    typer.Option("--server", help="Base URL of the running service [where `serve` would listen]."),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(help="The service's NAME=value settings file, for its port and admin token."),
]


def settings_from(config: Path | None = None, **flags: object) -> Settings:
    """The settings (`flags`, then the environment, then the `config` file); a one-line error
    when they cannot work, a warning for each name there that looks like a setting but is none."""
    try:
        settings = load_settings(config, **flags)
    except ConfigError as error:
        fail(str(error))
    for warning in unknown_names(config):
        err.print(f"warning: {warning}", markup=False)
    return settings


def base_url(settings: Settings, server: str | None) -> str:
    """Where the service is: --server (http:// if no scheme is given), else where `serve` with
    these settings listens."""
    if server:
        url = (server if "://" in server else f"http://{server}").rstrip("/")
        if url.endswith(WEBHOOK_PATH):
            # The banner's `webhooks:` line pasted: every path under it would answer 404.
            base = url.removesuffix(WEBHOOK_PATH)
            fail(
                f"--server {server} is the webhook URL; --server takes the service's base URL:"
                f" --server {base}"
            )
        return url
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{host}:{settings.port}"


def unreachable(base: str, error: httpx.HTTPError, server: str | None) -> str:
    """Why a client command found no service, and where else to look."""
    reason = str(error).rstrip(".") or type(error).__name__
    hint = (
        "is it running there?"
        if server
        else "is `dodo-transform serve` running? A service on another port or host: give "
        "--server URL (or --config with its settings file)"
    )
    return f"cannot reach {base}: {reason}; {hint}"
