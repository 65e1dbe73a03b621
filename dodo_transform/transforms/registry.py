"""The transforms folder: every `*.js` file in it, compiled, plus `transforms.toml` settings.

`Registry.reload()` re-reads the folder. Only files whose source or settings
changed are compiled again. A file that fails to compile keeps its last good
version in service and its error is kept in `errors`, for the log and the
admin API. `current()` returns an immutable snapshot, so an event that started
on one version of a transform finishes on it even if the file changes.

Besides `url`, `env`, `enabled` and `write_key`, a table may say which event types the
transform receives (`events`, exact names or a trailing `*`) and which headers go with
every request it makes (`headers`, whose `${NAME}` references are read from the
environment when the file is loaded). Those header values are credentials: the settings
keep them apart (`header_values()`), never in a field that is shown or logged.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import threading
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

from dodo_transform.errors import ConfigError, HandlerError
from dodo_transform.outbound import wire
from dodo_transform.outgoing import redact_headers
from dodo_transform.transforms.engine import Transform
from dodo_transform.transforms.event import EVENT_TYPES
from dodo_transform.transforms.limits import Limits

CONFIG_FILE = "transforms.toml"
log = logging.getLogger(__name__)


_EVENT_PATTERN = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)*(\.?\*)?|\*")
_REFERENCE = re.compile(r"\$\{([^}]*)\}")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class TransformSettings(BaseModel):
    """One table of `transforms.toml`, typed strictly: `enabled = "false"` is an error, not
    true, and an unknown key is an error, not ignored.

    `headers` holds the values as written (`"Bearer ${RESEND_API_KEY}"`); the values to send,
    references filled in from the environment given as validation context, are
    `header_values()`. A reference to a variable that is not set is an error naming it.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    url: str = ""
    env: dict[str, str] = Field(default_factory=dict)
    enabled: bool = True
    write_key: str | None = None
    events: list[str] | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    _header_values: dict[str, str] = PrivateAttr(default_factory=dict)
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

    @model_validator(mode="after")
    def _fill_in_headers(self, info: ValidationInfo) -> TransformSettings:
        context = info.context or {}
        environ: Mapping[str, str] = context.get("environ", {})
        problems = []
        for name, template in self.headers.items():
            problem = _template_problem(name, template)
            unset = [ref for ref in _REFERENCE.findall(template) if ref not in environ]
            if unset and not problem:
                if not context.get("unset_ok"):
                    problem = (
                        f"{', '.join(unset)} is not set in the environment: set it where the"
                        " service reads its settings (its environment or settings file) and"
                        " restart it"
                    )
                self._unset += [ref for ref in unset if ref not in self._unset]
            value = _REFERENCE.sub(lambda match: environ.get(match[1], ""), template)
            problem = problem or wire.header_problem(name, value)
            if problem:
                problems.append(f"headers.{name}: {problem}")
            self._header_values[name] = value
        if problems:
            raise PydanticCustomError("config", "; ".join(problems))
        return self

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

    def unset_variables(self) -> tuple[str, ...]:
        """Variables `headers` refers to that were not set (only when read with `unset_ok`:
        `test` and `check` warn instead of refusing, as they send nothing)."""
        return tuple(self._unset)


def _template_problem(name: str, template: str) -> str | None:
    """What is wrong with a header's `${NAME}` references, if anything.

    A header filled from the environment must have a name that redaction recognises as a
    credential's (`Authorization`, `X-Api-Key`, ...), for requests are shown with their
    headers (dry runs, `test`) and the value would be shown with them.
    """
    references = _REFERENCE.findall(template)
    if not references:
        return None
    for reference in references:
        if not _VARIABLE.fullmatch(reference):
            return (
                f"${{{reference}}} is not a variable reference: write ${{NAME}} with letters, "
                "digits and _"
            )
    if redact_headers({name: ""})[name] != "[redacted]":
        return (
            "a value from the environment is a credential, but a header of this name would be "
            "shown where requests are shown: name it like one (Authorization, X-Api-Key, "
            "X-Auth-Token, ...)"
        )
    return None


def read_settings(
    directory: Path, environ: Mapping[str, str] | None = None, *, unset_ok: bool = False
) -> dict[str, TransformSettings]:
    """Parse `transforms.toml` in `directory`; an absent file means defaults for all.

    `${NAME}` in headers is read from `environ` (default: this process's environment); a
    variable that is not set is a problem unless `unset_ok` (see `unset_variables`).
    Raises `ConfigError` naming every problem (file, table and key) if any table is bad.
    """
    environ = os.environ if environ is None else environ
    tables, problems = _read_tables(directory, environ, unset_ok=unset_ok)
    if problems:
        raise ConfigError(f"{directory / CONFIG_FILE}: " + "; ".join(problems.values()))
    return tables


def _read_tables(
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
    expected = _EXPECTED.get(item["type"], item["msg"].lower())
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


def load_file(
    path: Path, limits: Limits | None = None, environ: Mapping[str, str] | None = None
) -> Transform:
    """Compile one file with its settings from the `transforms.toml` beside it."""
    settings = read_settings(path.parent, environ).get(path.stem, TransformSettings())
    return Transform.from_file(
        path, default_url=settings.url, env=settings.env, limits=limits or Limits()
    )


class Registry:
    """The compiled transforms of one folder, reloadable while in use."""

    def __init__(
        self,
        directory: Path,
        limits: Limits | None = None,
        environ: Mapping[str, str] | None = None,
        *,
        log_changes: bool = True,
    ) -> None:
        """`environ` fills in `${NAME}` in headers at each reload (default: os.environ).
        `log_changes=False` keeps loads, reloads and load errors out of the log: where two
        processes load the same folder, one of them says what changed."""
        self.directory = directory
        self._log_changes_on = log_changes
        self.limits = limits or Limits()
        self._environ = os.environ if environ is None else environ
        self._lock = threading.Lock()
        self._transforms: Mapping[str, Transform] = MappingProxyType({})
        self._settings: dict[str, TransformSettings] = {}
        self._errors: dict[str, str] = {}
        self._warned: dict[str, str | None] = {}  # the settings warning last logged, by name

    def current(self) -> Mapping[str, Transform]:
        """The transforms in service now, by name (enabled or not)."""
        return self._transforms

    def settings(self, name: str) -> TransformSettings:
        return self._settings.get(name, TransformSettings())

    @property
    def errors(self) -> Mapping[str, str]:
        """Load errors by transform name."""
        return {name: error for name, error in self._errors.items() if name != CONFIG_FILE}

    @property
    def settings_error(self) -> str | None:
        """What is wrong with `transforms.toml`, if anything (each bad table's transform also
        has it among its `errors`)."""
        return self._errors.get(CONFIG_FILE)

    def warnings(self, name: str) -> list[str]:
        """What in a transform's settings is likely a mistake, though it loads."""
        warning = self.settings(name).events_warning(name)
        return [warning] if warning else []

    def reload(self) -> None:
        """Re-read the folder; log what changed and what failed.

        Bad settings never change what runs, as a broken edit of a file does not: a transform
        in service whose table of `transforms.toml` is bad (or the whole file, if it is not
        TOML) keeps the settings it runs with, and one not yet in service is not put in service
        until its table is fixed, for a typo must not run a transform meant to be off.
        """
        with self._lock:
            errors: dict[str, str] = {}
            unsettled = self._read_settings(errors)
            loaded: dict[str, Transform] = {}
            for path in sorted(self.directory.glob("*.js")):
                name = path.stem
                if (unsettled is None or name in unsettled) and name not in self._transforms:
                    errors[name] = f"not loaded: {errors.get(name) or errors[CONFIG_FILE]}"
                    continue
                try:
                    loaded[name] = self._load_if_changed(path, name)
                except HandlerError as error:
                    errors[name] = _joined(errors.get(name), str(error))
                    # Once per error: a reload for another file's change tries this one again.
                    if self._log_changes_on and errors[name] != self._errors.get(name):
                        log.error("transform %s failed to load: %s", name, error)
                    if name in self._transforms:
                        loaded[name] = self._transforms[name]
            self._log_changes(loaded)
            self._log_settings_problems(errors.get(CONFIG_FILE))
            self._transforms = MappingProxyType(loaded)
            self._errors = errors

    def _read_settings(self, errors: dict[str, str]) -> set[str] | None:
        """Take in the good tables of `transforms.toml`, keep the settings in force for the
        bad, and note each problem in `errors`. Return the names whose tables are bad (None:
        the file is not readable, so every name)."""
        path = self.directory / CONFIG_FILE
        try:
            tables, problems = _read_tables(self.directory, self._environ)
        except ConfigError as error:
            errors[CONFIG_FILE] = str(error)
            return None
        for name, problem in problems.items():
            if name in self._transforms:
                errors[name] = f"{path}: {problem}; the settings in force stay in service"
                if name in self._settings:
                    tables[name] = self._settings[name]
            else:
                errors[name] = f"{path}: {problem}"
        if problems:
            errors[CONFIG_FILE] = f"{path}: " + "; ".join(problems.values())
        self._settings = tables
        return set(problems)

    def _load_if_changed(self, path: Path, name: str) -> Transform:
        settings = self.settings(name)
        previous = self._transforms.get(name)
        try:
            source = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise HandlerError(f"{path}: cannot read transform: {error}") from None
        if (
            previous is not None
            and previous.source == source
            and previous.default_url == settings.url
            and dict(previous.env) == settings.env
        ):
            return previous
        return Transform(
            name=name,
            source=source,
            filename=str(path),
            default_url=settings.url,
            env=settings.env,
            limits=self.limits,
        )

    def _log_settings_problems(self, problems: str | None) -> None:
        """Say what is wrong with `transforms.toml` once, not at every reload until fixed."""
        if not self._log_changes_on:
            return
        if problems and problems != self._errors.get(CONFIG_FILE):
            log.error("transforms.toml is not taken in where it is bad: %s", problems)
        for name, settings in self._settings.items():
            before = self._warned.get(name)
            warning = settings.events_warning(name)
            if warning and warning != before:
                log.warning("%s", warning)
            self._warned[name] = warning

    def _log_changes(self, loaded: Mapping[str, Transform]) -> None:
        if not self._log_changes_on:
            return
        for name, transform in loaded.items():
            before = self._transforms.get(name)
            if before is None:
                log.info("transform %s loaded (version %s)", name, transform.version)
            elif before is not transform:
                log.info(
                    "transform %s reloaded (version %s -> %s)",
                    name,
                    before.version,
                    transform.version,
                )
        for name in self._transforms.keys() - loaded.keys():
            log.info("transform %s removed", name)


def _joined(first: str | None, second: str) -> str:
    return second if first is None else f"{first}; {second}"
