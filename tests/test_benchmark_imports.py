"""The benchmarks import only what the package has. They are run by hand (`run_all.py`), not by
the suite, so a name moved in the package would otherwise break them unseen until the next
measurement (bench_search.py's `event_terms` did, when it moved to `search_terms`)."""

from __future__ import annotations

import ast
import importlib
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def package_imports() -> Iterator[Any]:
    """(module, name) of every `from dodo_transform... import name` in the benchmarks."""
    for path in sorted(BENCHMARKS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "dodo_transform"
            ):
                for alias in node.names:
                    yield pytest.param(
                        node.module, alias.name, id=f"{path.name}:{node.module}.{alias.name}"
                    )


@pytest.mark.parametrize(("module", "name"), list(package_imports()))
def test_a_benchmark_imports_only_what_the_package_has(module: str, name: str) -> None:
    imported = importlib.import_module(module)
    assert hasattr(imported, name) or importlib.util.find_spec(f"{module}.{name}") is not None, (
        f"{module} has no {name}"
    )
