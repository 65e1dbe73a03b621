"""`transforms.toml`: one typed table of settings per transform, read strictly.

A table says where a transform's requests go (`url`), what its handler sees (`env`),
whether it runs (`enabled`), its Segment write key (`write_key`), which event types it
receives (`events`), which headers go with its requests to its `url`'s destination
(`headers`), and how they are delivered (`timeout`, `max_attempts`, `retry_schedule`, `rate`,
`concurrency`, `max_requests`). `${NAME}` references in `url`, `env` and `headers` are read
from the environment (or the settings file) when the folder is loaded; what comes from them,
the credentials and a write key are secrets, kept apart (`secret_values()`), never in a field
that is shown. A bad value is an error naming the file, the table and the key.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from dodo_transform.errors import ConfigError
from dodo_transform.outgoing import wire
from dodo_transform.outgoing.destination import DeliveryPolicy, credentials_go_to, duration_seconds
from dodo_transform.outgoing.redaction import (
    REDACTED,
    is_credential_header,
    redact_url,
    secret_parts,
    url_secrets,
    user_secrets,
)
from dodo_transform.transforms.event import EVENT_TYPES

CONFIG_FILE = "transforms.toml"
# Bounds of the delivery settings: beyond them a value is a mistake, not a choice.
MAX_TIMEOUT_SECONDS = 300.0
MAX_ATTEMPTS_ALLOWED = 100
MAX_CONCURRENCY = 256
DEFAULT_MAX_REQUESTS = 100
MIN_RETRY_SECONDS = 0.1
MAX_REQUESTS_ALLOWED = 10_000


_EVENT_PATTERN = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)*(\.?\*)?|\*")
_REFERENCE = re.compile(r"\$\{([^}]*)\}")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class TransformSettings(BaseModel):
    """One table of `transforms.toml`, typed strictly: `enabled = "false"` is an error, not
    true, and an unknown key is an error, not ignored.

    `url`, `env` and `headers` hold the values as written (`"Bearer ${RESEND_API_KEY}"`);
    the values in use, references filled in from the environment given as validation context,
    are `target_url`, `env_values()` and `header_values()`. A reference to a variable that is
    not set is an error naming it. What comes from a reference, the credentials among the
    headers, a write key and a URL marked `secret_url` are `secret_values()`: never shown.

    `timeout`, `max_attempts`, `retry_schedule`, `rate` and `concurrency` say how requests are
    delivered (None: the service's defaults, see `policy`); `max_requests` caps the requests
    one event may make.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    url: str = ""
    env: dict[str, str] = Field(default_factory=dict)
    enabled: bool = True
    write_key: str | None = None
    events: list[str] | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    secret_url: bool = False
    timeout: float | None = Field(default=None, gt=0, le=MAX_TIMEOUT_SECONDS)
    max_attempts: int | None = Field(default=None, ge=1, le=MAX_ATTEMPTS_ALLOWED)
    retry_schedule: list[str] | None = None
    rate: float | None = Field(default=None, gt=0)
    concurrency: int | None = Field(default=None, ge=1, le=MAX_CONCURRENCY)
    max_requests: int = Field(default=DEFAULT_MAX_REQUESTS, ge=1, le=MAX_REQUESTS_ALLOWED)
    _url: str = PrivateAttr(default="")
    _env: dict[str, str] = PrivateAttr(default_factory=dict)
    _header_values: dict[str, str] = PrivateAttr(default_factory=dict)
    _secrets: set[str] = PrivateAttr(default_factory=set)
    _unset: list[str] = PrivateAttr(default_factory=list)

    @field_validator("events")
    @classmethod
    def _check_events(cls, events: list[str] | None) -> list[str] | None:
        if events == []:
            raise PydanticCustomError(
                "config", "events = [] receives no event: use enabled = false to turn it off"
            )
        for pattern in events or ():
            if not _EVENT_PATTERN.fullmatch(pattern):
                raise PydanticCustomError(
                    "config",
                    f"events: {pattern!r} is not an event type (e.g. payment.succeeded) "
                    "or a prefix ending in * (e.g. subscription.*)",
                )
        return events

    @field_validator("retry_schedule")
    @classmethod
    def _check_schedule(cls, schedule: list[str] | None) -> list[str] | None:
        if schedule == []:
            raise PydanticCustomError(
                "config", "retry_schedule = [] has no delay: leave it out for the default"
            )
        for delay in schedule or ():
            seconds = duration_seconds(delay)
            if seconds is not None and seconds < MIN_RETRY_SECONDS:
                raise PydanticCustomError(
                    "config",
                    f"retry_schedule: {delay!r} is too soon: wait at least"
                    f" {MIN_RETRY_SECONDS:g} s between attempts",
                )
            if seconds is None:
                raise PydanticCustomError(
                    "config",
                    f"retry_schedule: {delay!r} is not a delay: write a number and a unit,"
                    ' e.g. ["10s", "1m", "10m", "1h"]',
                )
        return schedule

    @model_validator(mode="after")
    def _fill_in_references(self, info: ValidationInfo) -> TransformSettings:
        context = info.context or {}
        environ: Mapping[str, str] = context.get("environ", {})
        unset_ok = bool(context.get("unset_ok"))
        problems = []
        self._url, problem = self._filled(self.url, environ, unset_ok)
        if problem:
            problems.append(f"url: {problem}")
        elif self._url:
            self._secrets |= user_secrets(self._url)
            if self.secret_url or _REFERENCE.search(self.url):
                self._secrets |= url_secrets(self._url)
        for key, template in self.env.items():
            self._env[key], problem = self._filled(template, environ, unset_ok)
            if problem:
                problems.append(f"env.{key}: {problem}")
            elif _REFERENCE.search(template):
                self._secrets |= secret_parts(self._env[key])
        for name, template in self.headers.items():
            problem = _template_problem(name, template)
            value, unset_problem = self._filled(template, environ, unset_ok)
            problem = problem or unset_problem or wire.header_problem(name, value)
            if problem:
                problems.append(f"headers.{name}: {problem}")
            self._header_values[name] = value
            if _REFERENCE.search(template) or is_credential_header(name):
                self._secrets |= secret_parts(value)
        if self.write_key:
            self._secrets |= secret_parts(self.write_key)
        if problems:
            raise PydanticCustomError("config", "; ".join(problems))
        return self

    def _filled(
        self, template: str, environ: Mapping[str, str], unset_ok: bool
    ) -> tuple[str, str | None]:
        """`template` with its `${NAME}` references filled in, and what is wrong with it.
        Each variable's value is a secret in its own right (an error may echo it alone)."""
        references = _REFERENCE.findall(template)
        for reference in references:
            if not _VARIABLE.fullmatch(reference):
                return template, (
                    f"${{{reference}}} is not a variable reference: write ${{NAME}} with letters,"
                    " digits and _"
                )
        unset = [ref for ref in references if ref not in environ]
        self._unset += [ref for ref in unset if ref not in self._unset]
        for reference in references:
            self._secrets |= secret_parts(environ.get(reference, ""))
        value = _REFERENCE.sub(lambda match: environ.get(match[1], ""), template)
        if unset and not unset_ok:
            return value, (
                f"{', '.join(unset)} is not set in the environment: set it where the"
                " service reads its settings (its environment or settings file) and"
                " restart it"
            )
        return value, None

    @property
    def target_url(self) -> str:
        """`url` with its references filled in: where requests go if the handler sets none."""
        return self._url

    def env_values(self) -> Mapping[str, str]:
        """`env` with its references filled in, as the handler sees it."""
        return MappingProxyType(self._env)

    def receives(self, event_type: str) -> bool:
        """Whether `events` lets this transform see events of `event_type` (absent: all)."""
        if self.events is None:
            return True
        return any(
            event_type == pattern or (pattern.endswith("*") and event_type.startswith(pattern[:-1]))
            for pattern in self.events
        )

    def unknown_events(self) -> list[str]:
        """The names in `events` that match none of Dodo's event types: a typo (or a type
        newer than this release) that lets nothing through."""
        return [
            pattern
            for pattern in self.events or ()
            if not any(TransformSettings(events=[pattern]).receives(kind) for kind in EVENT_TYPES)
        ]

    def events_warning(self, name: str) -> str | None:
        """The warning for names in `events` that match no event type; None if all match."""
        unknown = self.unknown_events()
        if not unknown:
            return None
        return (
            f"events for [{name}] in transforms.toml: {', '.join(unknown)} matches"
            " none of Dodo's event types (a typo? it receives nothing of those)"
        )

    def header_values(self) -> Mapping[str, str]:
        """The headers to send, references filled in: credentials, never to be shown."""
        return MappingProxyType(self._header_values)

    def credentials_go_to(self, url: str) -> bool:
        """Whether a request to `url` gets the configured `headers`: only one to the
        destination (origin) of the configured `url` does."""
        return credentials_go_to(url, self._url)

    def secret_values(self) -> frozenset[str]:
        """Every value of this table that must never be shown (see the class docstring)."""
        return frozenset(self._secrets)

    def unset_variables(self) -> tuple[str, ...]:
        """Variables the table refers to that were not set (only when read with `unset_ok`:
        `test` and `check` warn instead of refusing, as they send nothing)."""
        return tuple(self._unset)

    def policy(self, defaults: DeliveryPolicy) -> DeliveryPolicy:
        """How this transform's requests are delivered: its own settings over `defaults`."""
        schedule = tuple(duration_seconds(d) or 0.0 for d in self.retry_schedule or ())
        return DeliveryPolicy(
            timeout=self.timeout or defaults.timeout,
            max_attempts=self.max_attempts or defaults.max_attempts,
            retry_schedule=schedule or defaults.retry_schedule,
            rate=self.rate or defaults.rate,
            concurrency=self.concurrency or defaults.concurrency,
        )

    def digest(self) -> str:
        """What identifies these settings in a transform's version: "" for the defaults (so a
        file without a table keeps the version of its source alone), else a hash of the table
        as it is shown, secrets redacted: a version is shown everywhere, and a hash of a short
        secret would give it away to a guesser. (What a secret's change means for the handler
        is `Transform.runs_with`'s, never shown.)"""
        if self == DEFAULTS:
            return ""
        text = json.dumps(self.shown(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def engine_options(self) -> dict[str, Any]:
        """What `Transform` takes from these settings (as keyword arguments)."""
        return {
            "default_url": self._url,
            "env": dict(self._env),
            "max_requests": self.max_requests,
            "settings_digest": self.digest(),
        }

    def shown(self) -> dict[str, Any]:
        """The table as written, for the version history and the API: a value written
        inline where a secret goes (a header credential, a write key, a secret URL's path)
        is redacted; `${NAME}` references are shown as written."""
        written = self.model_dump(mode="json", exclude_defaults=True)
        if self.write_key:
            written["write_key"] = REDACTED
        if self.url and self.secret_url:
            written["url"] = redact_url(self.url)
        if self.headers:
            written["headers"] = {
                name: REDACTED if _inline_credential(name, template) else template
                for name, template in self.headers.items()
            }
        return written


# A transform without a table of its own has these: one shared object, as the pipeline asks
# for a transform's settings for every request it makes.
DEFAULTS = TransformSettings()


def _inline_credential(name: str, template: str) -> bool:
    """A credential written into transforms.toml itself, not read from a variable."""
    return is_credential_header(name) and not _REFERENCE.search(template)


def _template_problem(name: str, template: str) -> str | None:
    """What is wrong with a header filled from the environment, if anything: its name must be
    one redaction recognises as a credential's (`Authorization`, `X-Api-Key`, ...), for
    requests are shown with their headers (dry runs, `test`)."""
    if not _REFERENCE.search(template) or is_credential_header(name):
        return None
    return (
        "a value from the environment is a credential, but a header of this name would be "
        "shown where requests are shown: name it like one (Authorization, X-Api-Key, "
        "X-Auth-Token, ...)"
    )


def read_settings(
    directory: Path, environ: Mapping[str, str] | None = None, *, unset_ok: bool = False
) -> dict[str, TransformSettings]:
    """Parse `transforms.toml` in `directory`; an absent file means defaults for all.

    `${NAME}` in `url`, `env` and `headers` is read from `environ` (default: this process's
    environment); a variable that is not set is a problem unless `unset_ok` (see
    `unset_variables`).
    Raises `ConfigError` naming every problem (file, table and key) if any table is bad.
    """
    environ = os.environ if environ is None else environ
    tables, problems = read_tables(directory, environ, unset_ok=unset_ok)
    if problems:
        raise ConfigError(f"{directory / CONFIG_FILE}: " + "; ".join(problems.values()))
    return tables


def read_tables(
    directory: Path, environ: Mapping[str, str], *, unset_ok: bool = False
) -> tuple[dict[str, TransformSettings], dict[str, str]]:
    """The good tables of `transforms.toml`, and a problem for each bad one, by table name.

    Raises `ConfigError` when the file cannot be read as TOML at all.
    """
    path = directory / CONFIG_FILE
    try:
        tables = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}, {}
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: {error}") from None
    except tomllib.TOMLDecodeError as error:
        # tomllib names a table as a Python tuple: "Cannot declare ('a', 'b') twice".
        message = re.sub(
            r"\(((?:'[^']*',? ?)+)\)",
            lambda found: "[" + ".".join(re.findall(r"'([^']*)'", found[1])) + "]",
            str(error),
        )
        raise ConfigError(f"{path}: not TOML: {message}") from None
    good: dict[str, TransformSettings] = {}
    problems: dict[str, str] = {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            problems[name] = f"[{name}] must be a table, not {_shown(table)}{_setting_hint(name)}"
            continue
        try:
            context = {"environ": environ, "unset_ok": unset_ok}
            good[name] = TransformSettings.model_validate(table, context=context)
        except ValidationError as error:
            problems[name] = "; ".join(_problem(name, item) for item in error.errors())
    return good, problems


_EXPECTED = {
    "bool_type": "true or false",
    "string_type": "a string",
    "dict_type": "a table of strings",
    "list_type": "an array of strings",
    "float_type": "a number",
    "int_type": "a whole number",
    "greater_than": "greater than {gt}",
    "greater_than_equal": "at least {ge}",
    "less_than_equal": "at most {le}",
}
_TOML_TYPES = [
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a float"),
    (str, "a string"),
    (dict, "a table"),
    (list, "an array"),
]


def _problem(name: str, item: Any) -> str:
    key = ".".join(str(part) for part in item["loc"])
    if item["type"] == "extra_forbidden":
        known = ", ".join(sorted(TransformSettings.model_fields))
        near = _nearest_setting(key)
        hint = f"; did you mean {near}?" if near else ""
        return f"[{name}] {key}: unknown key{hint} (known: {known})"
    if item["type"] == "config":
        return f"[{name}] {item['msg']}"
    kind = item["type"]
    bounds = {k: f"{v:g}" if isinstance(v, float) else v for k, v in item.get("ctx", {}).items()}
    expected = _EXPECTED[kind].format(**bounds) if kind in _EXPECTED else item["msg"].lower()
    return f"[{name}] {key} must be {expected}, not {_shown(item['input'])}"


def _nearest_setting(key: str) -> str | None:
    """The setting `key` is a typo of (`wrte_key`), or a longer name for (`environment`)."""
    known = sorted(TransformSettings.model_fields)
    near = difflib.get_close_matches(key.lower(), known, n=1, cutoff=0.7)
    near += [name for name in known if key.lower().startswith(name)]
    return near[0] if near else None


def _setting_hint(key: str) -> str:
    """For a top-level key that is not a table: the setting it looks like, if any (a setting
    written above the first table, or with its table's header missing)."""
    near = _nearest_setting(key)
    if near == key:
        return f"; {key} is a setting: put it under the [name] of its transform"
    return f"; did you mean {near}? Settings go under the [name] of their transform" if near else ""


def _shown(value: object) -> str:
    kind = next((kind for type_, kind in _TOML_TYPES if isinstance(value, type_)), "a date or time")
    return f"{value!r} ({kind})"
