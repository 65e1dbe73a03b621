"""Where the webhook signing secret comes from: the settings, else a file in the data dir.

The file is made on the first `serve` so that a new user can try the service
before connecting Dodo; to go live, set `DODO_WEBHOOK_SECRET` to the secret
Dodo's dashboard shows.
"""

from __future__ import annotations

from pathlib import Path

from dodo_transform import signing
from dodo_transform.errors import ConfigError
from dodo_transform.settings import Settings

SECRET_FILE = "webhook-secret"


def stored_secret(data_dir: Path, *, create: bool) -> tuple[str | None, bool]:
    """The secret kept in the data dir, made on first use when `create`; (secret, created)."""
    path = data_dir / SECRET_FILE
    if path.is_file():
        try:
            return path.read_text().strip(), False
        except OSError as error:
            raise ConfigError(f"cannot read {path}: {error.strerror or error}") from None
    if not create:
        return None, False
    secret = signing.new_secret()
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secret + "\n")
    except OSError as error:
        raise ConfigError(
            f"cannot keep a signing secret in {data_dir}: {error.strerror or error}; point"
            " --data-dir (DODO_TRANSFORM_DATA_DIR) at a writable folder"
        ) from None
    return secret, True


def signing_secrets(settings: Settings, *, create: bool) -> tuple[list[str], bool]:
    """The configured secrets, else the data dir's (made on first run); (secrets, created)."""
    if settings.secrets:
        return settings.secrets, False
    secret, created = stored_secret(settings.data_dir, create=create)
    if secret is None:
        # On PostgreSQL no instance makes one up (each would make its own), so the data dir's
        # is no answer there: the service's own comes first.
        raise ConfigError(
            "no webhook secret: set DODO_WEBHOOK_SECRET to the service's (in the environment, or"
            " give its settings file with --config); a service on SQLite without one makes"
            f" {settings.data_dir / SECRET_FILE} the first time `serve` runs"
        )
    return [secret], created
