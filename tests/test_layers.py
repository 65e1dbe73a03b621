"""The package's shape holds: no import circles, the web edge never reaches for the service,
and the light commands load no heavy stack."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dodo_transform"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Module -> the package modules it imports at load time (not inside functions)."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        found: set[str] = set()
        for node in tree.body:  # module level only: a function-level import is deferred
            if isinstance(node, ast.If):  # TYPE_CHECKING blocks do not run
                continue
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                found.update(n for n in names if n.startswith("dodo_transform"))
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("dodo_transform"))
        graph[module_name(path)] = found
    known = set(graph)
    return {m: {i for i in deps if i in known and i != m} for m, deps in graph.items()}


def test_there_is_no_import_circle() -> None:
    graph = imports()
    state: dict[str, int] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for dep in graph[module]:
            if state.get(dep) == 1:
                raise AssertionError(" -> ".join([*trail, module, dep]))
            if dep not in state:
                visit(dep, [*trail, module])
        state[module] = 2

    for module in graph:
        if module not in state:
            visit(module, [])


# The layers, lowest first: a module imports only its own room (top-level name) and the
# layers below its own, never a room beside it or above (docs/architecture.md draws them).
LAYERS = (
    # leaves: what everything agrees on; the words a search finds an event by; the allocator
    {"dodo_transform", "errors", "limits", "malloc", "outgoing", "search_terms"},
    {"logs", "metrics", "signing", "alerts", "tracing"},
    {"settings"},  # one typed settings object
    {"webhook_secret"},
    {"store", "transforms"},  # what is kept; the user's JavaScript
    {"outbound"},  # to the destinations
    {"pipeline", "instances"},  # the loops; the instances' heartbeats
    {"web"},  # the HTTP edge
    {"startup"},  # what serve checks first
    {"service"},  # the composition root
    {"testing", "cli"},
    {"__main__"},
)


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def layer(module: str) -> int:
    name = room(module)
    return next(n for n, rooms in enumerate(LAYERS) if name in rooms)


def test_every_room_has_a_layer() -> None:
    unplaced = {room(m) for m in imports()} - set().union(*LAYERS)
    assert not unplaced, f"add {sorted(unplaced)} to LAYERS (and docs/architecture.md)"


def test_imports_only_go_down_the_layers() -> None:
    wrong = sorted(
        f"{module} -> {dep}"
        for module, deps in imports().items()
        for dep in deps
        if room(dep) != room(module) and layer(dep) >= layer(module)
    )
    assert not wrong, "\n".join(wrong)


def test_the_web_edge_does_not_import_the_service() -> None:
    web = {m: deps for m, deps in imports().items() if m.startswith("dodo_transform.web")}
    assert web, "no web modules found"
    for module, deps in web.items():
        assert "dodo_transform.service" not in deps, module


@pytest.mark.parametrize(
    ("code", "absent"),
    [
        ("import dodo_transform.settings", ["quickjs", "fastapi", "uvicorn"]),
        ("import dodo_transform.cli", ["fastapi", "uvicorn"]),
    ],
)
def test_light_imports_stay_light(code: str, absent: list[str]) -> None:
    check = f"import sys; {code}; print([m for m in {absent!r} if m in sys.modules])"
    loaded = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"
