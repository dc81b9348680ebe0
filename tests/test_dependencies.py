"""Every third-party package the code imports is declared in pyproject.toml (a dependency or an
extra), so `pip install tunelab` never ends in a ModuleNotFoundError on a clean machine."""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parents[1]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    specs = list(project["dependencies"]) + [d for extra in project["optional-dependencies"].values() for d in extra]
    return {_norm(re.split(r"[\s\[<>=!~;]", spec, maxsplit=1)[0]) for spec in specs}


def _imported() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "src" / "tunelab").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m != "tunelab"}


def test_every_imported_package_is_declared():
    declared, dists = _declared(), md.packages_distributions()
    missing = sorted(m for m in _imported() if not {_norm(d) for d in dists.get(m, [m])} & declared)
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"
