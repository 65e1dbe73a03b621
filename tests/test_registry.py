"""The transforms folder: loading, settings, and reloads that keep the last good version."""

from __future__ import annotations

from pathlib import Path

import pytest

from dodo_transform.errors import ConfigError
from dodo_transform.transforms.registry import Registry, read_settings

GOOD = "function handler(w) { return w; }"


def test_loads_every_js_file_by_stem(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_text(GOOD)
    (tmp_path / "b.js").write_text(GOOD)
    (tmp_path / "notes.txt").write_text("ignored")
    registry = Registry(tmp_path)
    registry.reload()
    assert sorted(registry.current()) == ["a", "b"]
    assert registry.errors == {}


def test_a_broken_edit_keeps_the_last_good_version(tmp_path: Path) -> None:
    path = tmp_path / "a.js"
    path.write_text(GOOD)
    registry = Registry(tmp_path)
    registry.reload()
    good = registry.current()["a"]
    path.write_text("function handler(w) { return w +; }")
    registry.reload()
    assert registry.current()["a"] is good
    assert "SyntaxError" in registry.errors["a"]
    path.write_text(GOOD + "\n// fixed")
    registry.reload()
    assert registry.current()["a"].version != good.version
    assert registry.errors == {}


def test_unchanged_files_are_not_recompiled_and_deleted_ones_go(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_text(GOOD)
    (tmp_path / "b.js").write_text(GOOD)
    registry = Registry(tmp_path)
    registry.reload()
    before = registry.current()
    (tmp_path / "b.js").unlink()
    registry.reload()
    assert registry.current()["a"] is before["a"]
    assert "b" not in registry.current()
    assert "b" in before  # a snapshot taken earlier is not changed under an event in flight


def test_settings_reach_the_transform(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_text(GOOD)
    (tmp_path / "transforms.toml").write_text(
        '[a]\nurl = "https://hooks.example.com/in"\nenv = { K = "v" }\nenabled = false\n'
    )
    registry = Registry(tmp_path)
    registry.reload()
    transform = registry.current()["a"]
    assert (transform.default_url, dict(transform.env)) == (
        "https://hooks.example.com/in",
        {"K": "v"},
    )
    assert registry.settings("a").enabled is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[a]\nbogus = 1\n", "unknown keys: bogus"),
        ("[a]\nenv = { K = 1 }\n", "table of strings"),
        ("not toml [", "transforms.toml"),
    ],
)
def test_bad_settings_are_reported(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "transforms.toml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        read_settings(tmp_path)
    registry = Registry(tmp_path)
    registry.reload()
    assert message in registry.errors["transforms.toml"]
