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
        return path.read_text().strip(), False
    if not create:
        return None, False
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = signing.new_secret()
    path.touch(mode=0o600)
    path.write_text(secret + "\n")
    return secret, True


def signing_secrets(settings: Settings, *, create: bool) -> tuple[list[str], bool]:
    """The configured secrets, else the data dir's (made on first run); (secrets, created)."""
    if settings.secrets:
        return settings.secrets, False
    secret, created = stored_secret(settings.data_dir, create=create)
    if secret is None:
        raise ConfigError(
            f"no webhook secret: set DODO_WEBHOOK_SECRET or run `serve` once to create "
            f"{settings.data_dir / SECRET_FILE}"
        )
    return [secret], created
