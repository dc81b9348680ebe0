"""Atomic writes and run directories."""

from __future__ import annotations

import json

import pytest

from tunelab import runs
from tunelab.config import validate_config
from tunelab.errors import RunDirError
from tunelab.io import atomic_dir, atomic_path, atomic_write_json, read_jsonl


def test_atomic_write_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.json"
    atomic_write_json(target, {"a": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_atomic_dir_replaces_only_when_complete(tmp_path):
    target = tmp_path / "model"
    with atomic_dir(target) as d:
        (d / "w").write_text("v1")
    with pytest.raises(RuntimeError), atomic_dir(target) as d:
        (d / "w").write_text("v2-partial")
        raise RuntimeError("crash")
    assert (target / "w").read_text() == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_read_jsonl_skips_torn_last_line(tmp_path):
    p = tmp_path / "h.jsonl"
    p.write_text('{"step": 1}\n{"step": 2}\n{"ste')
    assert [r["step"] for r in read_jsonl(p)] == [1, 2]


def _cfg(tmp_path):
    return validate_config(
        {
            "name": "demo",
            "output_dir": str(tmp_path / "runs"),
            "task": {"type": "classification"},
            "data": {"train_file": "x"},
            "model": {"name_or_path": "m"},
        }
    )


def test_run_dirs_are_unique_and_loadable(tmp_path):
    cfg = _cfg(tmp_path)
    a, b = runs.new_run_dir(cfg), runs.new_run_dir(cfg)
    assert a != b
    runs.write_run_files(a, cfg)
    run = runs.load_run(a)
    assert run.config == cfg and run.info["run_format"] == runs.RUN_FORMAT
    runs.write_run_files(b, cfg)
    assert runs.latest_run_dir(cfg) == max(a, b)


def test_run_dir_from_other_version_is_refused(tmp_path):
    cfg = _cfg(tmp_path)
    d = runs.new_run_dir(cfg)
    runs.write_run_files(d, cfg)
    info = json.loads((d / runs.RUN_INFO).read_text())
    info.update(run_format=99, tunelab_version="9.9.9")
    (d / runs.RUN_INFO).write_text(json.dumps(info))
    with pytest.raises(RunDirError, match="tunelab 9.9.9"):
        runs.load_run(d)


def test_not_a_run_dir(tmp_path):
    with pytest.raises(RunDirError, match="not found"):
        runs.load_run(tmp_path / "nope")
    with pytest.raises(RunDirError, match="not a tunelab run directory"):
        runs.load_run(tmp_path)


def test_confine_refuses_escape(tmp_path):
    (tmp_path / "r").mkdir()
    assert runs.confine(tmp_path / "r", "predictions/x.csv").name == "x.csv"
    with pytest.raises(RunDirError, match="escapes the run directory"):
        runs.confine(tmp_path / "r", "../../etc/passwd")
    with pytest.raises(RunDirError, match="escapes"):
        runs.confine(tmp_path / "r", "/etc/passwd")
