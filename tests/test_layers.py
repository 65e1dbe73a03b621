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
