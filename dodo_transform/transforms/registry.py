"""The transforms folder: every `*.js` file in it, compiled, plus `transforms.toml` settings.

`Registry.reload()` re-reads the folder. Only files whose source or settings
changed are compiled again. A file that fails to compile keeps its last good
version in service and its error is kept in `errors`, for the log and the
admin API. `current()` returns an immutable snapshot, so an event that started
on one version of a transform finishes on it even if the file changes.

Each transform's table of `transforms.toml` (see `settings.py`) is read at every reload;
a bad table never changes what runs. A transform's version names its source and its
settings together: a changed table is a new version, compiled afresh, whose next event
runs with the new settings.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from dodo_transform.errors import ConfigError, HandlerError
from dodo_transform.limits import Limits
from dodo_transform.transforms.engine import Transform
from dodo_transform.transforms.settings import (
    CONFIG_FILE,
    DEFAULTS,
    TransformSettings,
    read_settings,
    read_tables,
)

log = logging.getLogger(__name__)


def load_file(
    path: Path, limits: Limits | None = None, environ: Mapping[str, str] | None = None
) -> Transform:
    """Compile one file with its settings from the `transforms.toml` beside it."""
    settings = read_settings(path.parent, environ).get(path.stem, DEFAULTS)
    return Transform.from_file(path, limits=limits or Limits(), **settings.engine_options())


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
        self._secrets: frozenset[str] = frozenset()

    @property
    def logs_changes(self) -> bool:
        """Whether this registry logs what changed (the one process of a service that does)."""
        return self._log_changes_on

    def current(self) -> Mapping[str, Transform]:
        """The transforms in service now, by name (enabled or not)."""
        return self._transforms

    def settings(self, name: str) -> TransformSettings:
        return self._settings.get(name, DEFAULTS)

    @property
    def errors(self) -> Mapping[str, str]:
        """Load errors by transform name."""
        return {name: error for name, error in self._errors.items() if name != CONFIG_FILE}

    @property
    def settings_error(self) -> str | None:
        """What is wrong with `transforms.toml`, if anything (each bad table's transform also
        has it among its `errors`)."""
        return self._errors.get(CONFIG_FILE)

    def secret_values(self) -> frozenset[str]:
        """Every secret of every table in force (see `TransformSettings.secret_values`)."""
        return self._secrets

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
            self._log_changes(loaded, errors)
            self._log_settings_problems(errors.get(CONFIG_FILE))
            self._transforms = MappingProxyType(loaded)
            self._errors = errors
            self._secrets = frozenset().union(*(s.secret_values() for s in self._settings.values()))

    def _read_settings(self, errors: dict[str, str]) -> set[str] | None:
        """Take in the good tables of `transforms.toml`, keep the settings in force for the
        bad, and note each problem in `errors`. Return the names whose tables are bad (None:
        the file is not readable, so every name)."""
        path = self.directory / CONFIG_FILE
        try:
            tables, problems = read_tables(self.directory, self._environ)
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
        options = settings.engine_options()
        if previous is not None and previous.source == source and previous.options() == options:
            return previous
        return Transform(
            name=name, source=source, filename=str(path), limits=self.limits, **options
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

    def _log_changes(self, loaded: Mapping[str, Transform], errors: Mapping[str, str]) -> None:
        if not self._log_changes_on:
            return
        for name, transform in loaded.items():
            before = self._transforms.get(name)
            if before is None:
                log.info("transform %s loaded (version %s)", name, transform.version)
            elif name in self._errors and name not in errors:
                # Its failure was logged; say it is over, even when the fix gave back the very
                # version that kept running meanwhile (nothing else would be logged then).
                log.info("transform %s loads again (version %s)", name, transform.version)
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
