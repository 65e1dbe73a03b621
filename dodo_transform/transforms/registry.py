"""The transforms folder: every `*.js` file in it, compiled, plus `transforms.toml` settings.

`Registry.reload()` re-reads the folder. Only files whose source or settings
changed are compiled again. A file that fails to compile keeps its last good
version in service and its error is kept in `errors`, for the log and the
admin API. `current()` returns an immutable snapshot, so an event that started
on one version of a transform finishes on it even if the file changes.
"""

from __future__ import annotations

import logging
import threading
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from dodo_transform.errors import ConfigError, HandlerError
from dodo_transform.transforms.engine import Transform
from dodo_transform.transforms.limits import Limits

CONFIG_FILE = "transforms.toml"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TransformSettings:
    """One table of `transforms.toml`."""

    url: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    enabled: bool = True
    write_key: str | None = None

    @classmethod
    def parse(cls, name: str, table: Any) -> TransformSettings:
        if not isinstance(table, dict):
            raise ConfigError(f"{CONFIG_FILE}: [{name}] must be a table")
        unknown = set(table) - {"url", "env", "enabled", "write_key"}
        if unknown:
            raise ConfigError(
                f"{CONFIG_FILE}: [{name}] has unknown keys: {', '.join(sorted(unknown))}"
            )
        env = table.get("env", {})
        if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
            raise ConfigError(f"{CONFIG_FILE}: [{name}] env must be a table of strings")
        return cls(
            url=str(table.get("url", "")),
            env=dict(env),
            enabled=bool(table.get("enabled", True)),
            write_key=table.get("write_key"),
        )


def read_settings(directory: Path) -> dict[str, TransformSettings]:
    """Parse `transforms.toml` in `directory`; an absent file means defaults for all."""
    path = directory / CONFIG_FILE
    try:
        tables = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{path}: {error}") from None
    return {name: TransformSettings.parse(name, table) for name, table in tables.items()}


def load_file(path: Path, limits: Limits | None = None) -> Transform:
    """Compile one file with its settings from the `transforms.toml` beside it."""
    settings = read_settings(path.parent).get(path.stem, TransformSettings())
    return Transform.from_file(
        path, default_url=settings.url, env=settings.env, limits=limits or Limits()
    )


class Registry:
    """The compiled transforms of one folder, reloadable while in use."""

    def __init__(self, directory: Path, limits: Limits | None = None) -> None:
        self.directory = directory
        self.limits = limits or Limits()
        self._lock = threading.Lock()
        self._transforms: Mapping[str, Transform] = MappingProxyType({})
        self._settings: dict[str, TransformSettings] = {}
        self._errors: dict[str, str] = {}

    def current(self) -> Mapping[str, Transform]:
        """The transforms in service now, by name (enabled or not)."""
        return self._transforms

    def settings(self, name: str) -> TransformSettings:
        return self._settings.get(name, TransformSettings())

    @property
    def errors(self) -> Mapping[str, str]:
        """Load errors by transform name (or by config file name)."""
        return dict(self._errors)

    def reload(self) -> None:
        """Re-read the folder; log what changed and what failed."""
        with self._lock:
            errors: dict[str, str] = {}
            try:
                self._settings = read_settings(self.directory)
            except ConfigError as error:
                errors[CONFIG_FILE] = str(error)  # keep the previous settings
            loaded: dict[str, Transform] = {}
            for path in sorted(self.directory.glob("*.js")):
                name = path.stem
                try:
                    loaded[name] = self._load_if_changed(path, name)
                except HandlerError as error:
                    errors[name] = str(error)
                    log.error("transform %s failed to load: %s", name, error)
                    if name in self._transforms:
                        loaded[name] = self._transforms[name]
            self._log_changes(loaded)
            self._transforms = MappingProxyType(loaded)
            self._errors = errors

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

    def _log_changes(self, loaded: Mapping[str, Transform]) -> None:
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
