"""The API reference builds from the docstrings (what `make docs` runs), with every public name in it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import tunelab

ROOT = Path(__file__).resolve().parents[1]


def test_api_reference_builds_with_every_public_name(tmp_path):
    pytest.importorskip("pdoc")
    out = tmp_path / "api"
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_api_docs.py"), str(out)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    page = (out / "tunelab.html").read_text(encoding="utf-8")
    for name in tunelab.__all__:
        assert f'id="{name}"' in page, name
    for member in ("Run.predict", "Run.evaluate", "Run.history", "Findings.ok", "Experiment.runs"):
        assert f'id="{member}"' in page, member
    kedro = (out / "tunelab" / "integrations" / "kedro.html").read_text(encoding="utf-8")
    assert 'id="create_pipeline"' in kedro and 'id="TunelabHooks"' in kedro
    internal = {p.relative_to(out).as_posix() for p in out.rglob("*.html")}
    assert internal == {"index.html", "tunelab.html", "tunelab/integrations/kedro.html"}


def test_no_public_name_is_shadowed_by_a_submodule():
    # `tunelab.bench` the package would replace a `tunelab.bench` function once imported.
    clashes = [name for name in tunelab.__all__ if importlib.util.find_spec(f"tunelab.{name}") is not None]
    assert clashes == []
