"""One typed settings object, built once at startup and passed down.

Three spellings of the same settings, highest priority first: command-line
flags, environment variables, and an optional config file in the same
`NAME=value` form as the environment (`--config`, default `dodo-transform.env`
if present). Most variables are `DODO_TRANSFORM_<FIELD>`; the few users know
from Dodo's and Segment's docs keep their own names (see the aliases).
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from dotenv import dotenv_values
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from dodo_transform.errors import ConfigError
from dodo_transform.limits import Limits
from dodo_transform.logs import LogFormat, LogLevel
from dodo_transform.outgoing.redaction import secret_parts, url_secrets

DEFAULT_CONFIG_FILE = Path("dodo-transform.env")
DEFAULT_DATA_DIR = Path(".dodo-transform")
WEBHOOK_PATH = "/webhooks/dodo"  # where the service takes Dodo's webhooks
DEFAULT_ADDRESS = ("127.0.0.1", 8000)
SEGMENT_REGIONS = {"us": "https://api.segment.io", "eu": "https://events.eu1.segmentapis.com"}


def _alias(name: str) -> Any:
    # The field name (for flags and code) and the one documented variable name.
    return Field(default=None, validation_alias=AliasChoices(name, name.upper()))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DODO_TRANSFORM_", populate_by_name=True, extra="ignore", frozen=True
    )

    host: str = DEFAULT_ADDRESS[0]
    port: int = Field(default=DEFAULT_ADDRESS[1], ge=0, le=65535)
    transforms: Path = Path("transforms")
    data_dir: Path = DEFAULT_DATA_DIR

    webhook_secret: SecretStr | None = _alias("dodo_webhook_secret")
    # The signing secret(s) of Dodo's test-mode endpoint: one service takes both modes, and
    # each event is stored as `test` or `live` by the secret that verified it.
    webhook_test_secret: SecretStr | None = _alias("dodo_webhook_test_secret")
    segment_write_key: SecretStr | None = _alias("segment_write_key")
    segment_endpoint: str | None = _alias("segment_endpoint")
    segment_region: Literal["us", "eu"] = Field(
        default="us", validation_alias=AliasChoices("segment_region", "SEGMENT_REGION")
    )
    admin_token: SecretStr | None = None
    # OpenTelemetry's standard variable: traces are exported over OTLP/HTTP to this collector
    # (tracing.py); unset, nothing is traced. The exporter reads the other OTEL_* itself.
    otel_endpoint: str | None = Field(
        default=None, validation_alias=AliasChoices("otel_endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT")
    )
    # Where alerts go (a Slack-style incoming webhook); secret, as such URLs carry a token.
    alert_url: SecretStr | None = None
    # Proxies whose X-Forwarded-For/-Proto are believed (uvicorn's `forwarded_allow_ips`, comma
    # separated addresses or networks). Empty: no proxy headers are believed, from anyone.
    forwarded_allow_ips: str = ""
    # Where events are stored: unset means SQLite in the data dir; sqlite:///path/file.db names
    # another file; postgresql://... a database several instances share.
    database_url: str | None = None
    # What this instance does: "all" (webhooks, the admin API and the pipeline), "ingest"
    # (webhooks and the admin API only) or "worker" (the pipeline only).
    role: Literal["all", "ingest", "worker"] = "all"

    allowed_hosts: str = ""
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    # Seconds a connection has to send a complete request head (from connecting, or from the
    # end of its previous response), and a webhook to send its whole body; then it is closed.
    header_timeout: float = Field(default=10.0, gt=0)
    body_timeout: float = Field(default=10.0, gt=0)
    # Open HTTP connections at most; unset, derived from the process's file-descriptor limit.
    max_connections: int | None = Field(default=None, ge=1)
    retention_days: int = Field(default=14, gt=0)
    # Days kept per delivery status, overriding retention_days for events whose deliveries are
    # in them, e.g. "delivered=14,dead=90" (an event is kept while any of its deliveries says
    # to keep it; the statuses are checked when the pipeline is built).
    # NoDecode: the environment's value is "delivered=14,dead=90", not JSON (the validator reads).
    retention_by_status: Annotated[dict[str, int], NoDecode] = Field(default_factory=dict)
    handler_time_limit: float = Field(default=1.0, gt=0)
    handler_memory_mb: int = Field(default=64, ge=4)
    # Sandbox processes the handlers run in. One is fastest on two cores (measured: a second
    # one's pipe round trips cost more than it runs in parallel); more suit bigger machines.
    transform_threads: int = Field(default=1, ge=1)
    delivery_concurrency: int = Field(default=16, ge=1)
    delivery_timeout: float = Field(default=15.0, gt=0)
    lease_seconds: float = Field(default=60.0, gt=0)
    retry_base_seconds: float = Field(default=5.0, gt=0)
    # Segment allows about 1,000 requests/s per workspace; batching needs far fewer.
    segment_requests_per_second: float = Field(default=50.0, gt=0)
    # Deliveries a bulk replay replays per second at most (pipeline/bulk_replay.py).
    bulk_replay_per_second: float = Field(default=20.0, gt=0)
    # Messages per /v1/batch request; 1 sends one request per message.
    segment_batch_size: int = Field(default=250, ge=1, le=2500)
    # Transform and deliver in a separate process, so ingest never waits on the pipeline.
    worker_process: bool = True
    # Log lines as "text" (a line a person reads), "json" (an object a line, for a collector),
    # or "auto": text when stderr is a terminal, JSON otherwise (journald, a file, a pipe).
    log_format: LogFormat = "auto"
    # The least severe lines logged (any case): debug, info, warning or error.
    log_level: LogLevel = "info"

    # The NAME=value file these settings were read from, if any (set by `load_settings`):
    # `${NAME}` in transforms.toml headers may name its variables too.
    config_file: Path | None = None

    @field_validator("log_format", "log_level", "role", "segment_region", mode="before")
    @classmethod
    def _any_case(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("retention_by_status", mode="before")
    @classmethod
    def _status_days(cls, value: object) -> object:
        """ "delivered=14,dead=90" (the environment's and the settings file's spelling)."""
        if not isinstance(value, str):
            return value
        days: dict[str, str] = {}
        for part in value.replace(";", ",").split(","):
            if not part.strip():
                continue
            status, equals, number = part.partition("=")
            if not equals:
                raise ValueError(f"{part.strip()!r}: give STATUS=DAYS, e.g. delivered=14,dead=90")
            days[status.strip().lower()] = number.strip()
        return days

    @field_validator("retention_by_status")
    @classmethod
    def _positive_days(cls, value: dict[str, int]) -> dict[str, int]:
        for status, days in value.items():
            if days <= 0:
                raise ValueError(f"{status}={days}: days must be at least 1")
        return value

    def variables(self) -> dict[str, str]:
        """What `${NAME}` in transforms.toml can name: the settings file's variables, and the
        environment's over them (as the environment wins for the settings themselves)."""
        found: dict[str, str] = {}
        if self.config_file is not None and self.config_file.is_file():
            found = {k: v for k, v in dotenv_values(self.config_file).items() if v is not None}
        return found | dict(os.environ)

    @property
    def secrets(self) -> list[str]:
        """The configured signing secrets of the live endpoint (several during rotation)."""
        return _split(self.webhook_secret)

    @property
    def test_secrets(self) -> list[str]:
        """The configured signing secrets of the test-mode endpoint."""
        return _split(self.webhook_test_secret)

    def secret_values(self) -> frozenset[str]:
        """Every secret of these settings, to keep out of anything shown: the write key, the
        signing secrets, the admin token and the alert URL (which carries a token)."""
        found: set[str] = set()
        for setting in (self.segment_write_key, self.admin_token, self.alert_url):
            if setting is not None and setting.get_secret_value():
                found |= secret_parts(setting.get_secret_value())
        if self.alert_url is not None and self.alert_url.get_secret_value():
            found |= url_secrets(self.alert_url.get_secret_value())
        for signing_secret in self.secrets + self.test_secrets:
            found |= secret_parts(signing_secret)
            found |= secret_parts(signing_secret.removeprefix("whsec_"))
        return frozenset(found)

    @property
    def segment_base_url(self) -> str:
        """Where Segment calls go: `SEGMENT_ENDPOINT`, else the region's API."""
        return (self.segment_endpoint or SEGMENT_REGIONS[self.segment_region]).rstrip("/")

    @property
    def extra_allowed_hosts(self) -> frozenset[str]:
        return frozenset(
            host.strip().lower()
            for host in self.allowed_hosts.replace(" ", ",").split(",")
            if host.strip()
        )

    @property
    def trusted_proxies(self) -> list[str]:
        """The proxy addresses whose forwarding headers are believed (none by default)."""
        return [
            ip.strip() for ip in self.forwarded_allow_ips.replace(" ", ",").split(",") if ip.strip()
        ]

    @property
    def dry_run(self) -> bool:
        """No write key: record what would be sent instead of sending it."""
        return self.segment_write_key is None or not self.segment_write_key.get_secret_value()

    @property
    def limits(self) -> Limits:
        return Limits(
            time_seconds=self.handler_time_limit,
            memory_bytes=self.handler_memory_mb * 1024 * 1024,
        )

    @property
    def database(self) -> Path:
        """The SQLite file in the data dir, used when no database URL is set."""
        return self.data_dir / "dodo-transform.db"

    @property
    def sqlite_path(self) -> Path:
        """The SQLite file a `sqlite:///path` database URL names (else the data dir's)."""
        if self.database_url is None:
            return self.database
        return Path(self.database_url.removeprefix("sqlite:").removeprefix("//"))


def _split(setting: SecretStr | None) -> list[str]:
    """Secrets separated by spaces or commas."""
    if setting is None:
        return []
    return [secret for secret in setting.get_secret_value().replace(",", " ").split() if secret]


def load_settings(config_file: Path | None = None, **flags: Any) -> Settings:
    """Build the settings; flags that are None are left to the environment and the file."""
    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"config file {config_file} does not exist")
    env_file = config_file or (DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None)
    given = {name: value for name, value in flags.items() if value is not None}
    try:
        return Settings(_env_file=env_file, **({"config_file": env_file} | given))  # type: ignore[call-arg]
    except ValidationError as error:
        problems = "; ".join(
            f"{_where(item['loc'], given)}: {item['msg']}" for item in error.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from None


def _where(location: tuple[int | str, ...], flags: dict[str, Any]) -> str:
    """Where a bad value came from, as the user wrote it: the flag, else the variable."""
    name = str(location[0]) if location else ""
    field = Settings.model_fields.get(name)
    if field is None:
        return ".".join(map(str, location)) or "settings"
    if name in flags:
        return "--" + name.replace("_", "-")
    return variable_name(name)


def variable_name(field_name: str) -> str:
    """The documented environment variable of a setting: SEGMENT_REGION, DODO_TRANSFORM_PORT."""
    alias = Settings.model_fields[field_name].validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[-1]).upper()
    return f"DODO_TRANSFORM_{field_name.upper()}"


def known_names() -> set[str]:
    """Every variable name the settings read."""
    names = {f"DODO_TRANSFORM_{name.upper()}" for name in Settings.model_fields}
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice).upper() for choice in alias.choices)
    return names


def secret_names() -> set[str]:
    """Every variable name of a setting that holds a secret (a token, a key, a URL with one)."""
    names = set()
    for name, field in Settings.model_fields.items():
        if field.annotation in (SecretStr, SecretStr | None):
            names.add(variable_name(name))
            alias = field.validation_alias
            if isinstance(alias, AliasChoices):
                names.update(str(choice).upper() for choice in alias.choices)
    return names


def secrets_in(config_file: Path) -> list[str]:
    """The names a settings file gives secret values: the secret settings, a database URL with
    a password, and any name that is no setting (the variables transforms.toml's headers name
    are API keys, most of them)."""
    secret, known = secret_names(), known_names()
    found = []
    for name, value in dotenv_values(config_file).items():
        upper = name.upper()
        if not value:
            continue
        if (
            upper in secret
            or upper not in known
            or (upper == variable_name("database_url") and _has_password(value))
        ):
            found.append(name)
    return found


def _has_password(url: str) -> bool:
    credentials = url.partition("://")[2].rpartition("@")[0]
    return ":" in credentials


def unknown_names(config_file: Path | None = None) -> list[str]:
    """Warnings for names in the environment or the config file that look like settings but
    are none (a typo is otherwise ignored without a word), with the nearest known name."""
    env_file = config_file or (DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None)
    seen = {name: "the environment" for name in os.environ}
    if env_file is not None and env_file.is_file():
        for line in env_file.read_text(errors="replace").splitlines():
            name = line.split("=", 1)[0].strip().removeprefix("export ").strip()
            if "=" in line and name and not name.startswith("#"):
                seen[name] = str(env_file)
    known = known_names()
    warnings = []
    for name, where in sorted(seen.items()):
        if not name.startswith(("DODO_", "SEGMENT_")) or name in known:
            continue
        near = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
        hint = f"; did you mean {near[0]}?" if near else ""
        warnings.append(f"{name} in {where} is not a dodo-transform setting{hint}")
    return warnings
