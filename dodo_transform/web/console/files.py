"""The transforms folder as the console sees it: which files there are, reading one, saving one.

The file is the source of truth: a save from the console writes it exactly as an
edit in the folder would, and the registry picks it up the same way. Writes are
atomic (a temporary file beside it, then `os.replace`), so the watcher and the
worker never read half a file.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

# A transform's name is its file's stem; anything else in a URL names no file.
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")


class UnknownTransform(LookupError):
    """No transform file has this name."""


def valid_name(name: str) -> bool:
    return _NAME.fullmatch(name) is not None


def names(folder: Path) -> list[str]:
    """The transforms in the folder (its `*.js` files), sorted."""
    return sorted(path.stem for path in folder.glob("*.js") if valid_name(path.stem))


def path_of(folder: Path, name: str) -> Path:
    """The file of transform `name`; `UnknownTransform` unless it exists."""
    path = folder / f"{name}.js"
    if not valid_name(name) or not path.is_file():
        raise UnknownTransform(f"no transform {name!r} in {folder}")
    return path


def read(folder: Path, name: str) -> str:
    return path_of(folder, name).read_text("utf-8", errors="replace")


def write(folder: Path, name: str, source: str) -> Path:
    """Replace transform `name`'s file with `source`, atomically, keeping its permissions."""
    path = path_of(folder, name)
    mode = path.stat().st_mode & 0o777
    # Not ending in .js, so the registry never loads the temporary file.
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".saving")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(source)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _sync_folder(folder)
    return path


def _sync_folder(folder: Path) -> None:
    # The rename is durable once the folder's entry is on disk.
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
