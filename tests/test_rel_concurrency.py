"""Guarantee 7: two tunelab processes on the same run name, run directory or cache entry never
corrupt each other: fresh runs get unique directories, a run directory is locked (the second
process fails at once with a clear message, also after the holder was SIGKILLed the lock is free
again), and a cache entry is built once while the other process waits and reuses it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from rel_support import assert_same_weights, make_project
from tunelab.errors import ResourceError
from tunelab.safety.locks import LOCK_NAME, OWNER_NAME, run_lock

HOLD = """
import sys, time
from tunelab.safety.locks import run_lock
with run_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(120)
"""


def _holder(path: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_process_fails_clearly_and_a_killed_holder_frees_the_lock(tmp_path):
    run = tmp_path / "run"
    holder = _holder(run)
    try:
        with pytest.raises(ResourceError) as err, run_lock(run):
            pass
        assert (
            f"held by pid {holder.pid}" in err.value.message
            and "in use by another tunelab process" in err.value.message
        )
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # like the OOM killer: no cleanup code runs
        holder.wait()
    assert (run / LOCK_NAME).exists()  # the lock file stays, but the kernel released the lock
    with run_lock(run):
        pass


def _mkdir_run(args: tuple[str, str]) -> str:
    from tunelab.config.loader import validate_config
    from tunelab.runs import new_run_dir

    root, name = args
    cfg = validate_config(
        {
            "name": name,
            "output_dir": root,
            "task": {"type": "classification"},
            "data": {"train_file": "t.csv"},
            "model": {"name_or_path": "m"},
        }
    )
    return str(new_run_dir(cfg))


def test_same_run_name_at_once_gets_unique_directories(tmp_path):
    with ProcessPoolExecutor(4) as pool:
        dirs = list(pool.map(_mkdir_run, [(str(tmp_path), "same")] * 12))
    assert len(set(dirs)) == 12 and all(Path(d).is_dir() for d in dirs)


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "cfg.yaml"  # never gets as far as loading a model or data
    path.write_text(
        json.dumps(
            {
                "name": "rel",
                "output_dir": str(tmp_path / "runs"),
                "task": {"type": "classification"},
                "data": {"train_file": "t.csv"},
                "model": {"name_or_path": "m"},
                "tracking": "none",
            }
        )
    )
    return path


def _train(*args: str):
    from typer.testing import CliRunner

    from tunelab.cli import app

    return CliRunner().invoke(app, ["train", *args])


def test_train_on_a_locked_run_directory_exits_with_one_clear_line(tmp_path):
    cfg = _config(tmp_path)
    run = tmp_path / "runs" / "busy"
    holder = _holder(run)
    try:
        res = _train(str(cfg), "--run-dir", str(run), "--resume")
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    assert res.exit_code == 2 and isinstance(res.exception, SystemExit), res.output
    errors = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "in use by another tunelab process" in errors[0] and "Traceback" not in res.output
    assert sorted(p.name for p in run.iterdir()) == [LOCK_NAME, OWNER_NAME]  # the holder's; nothing of ours


def test_train_into_a_non_empty_run_directory_is_refused(tmp_path):
    cfg = _config(tmp_path)
    run = tmp_path / "runs" / "taken"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text("{}")
    res = _train(str(cfg), "--run-dir", str(run))
    assert res.exit_code == 2 and "run directory is not empty" in res.output
    assert sorted(p.name for p in run.iterdir()) == ["metrics.json"]


@pytest.mark.slow
def test_two_trainings_of_one_config_at_once(tmp_path):
    """Same run name, same (cold) cache entry, started together: both finish, identically."""
    cfg = make_project(tmp_path, num_train_epochs=1)
    env = {
        **os.environ,
        "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
        "TUNELAB_FAULT": "",
        "TOKENIZERS_PARALLELISM": "false",
    }
    exe = str(Path(sys.executable).with_name("tunelab"))
    procs = [
        subprocess.Popen([exe, "train", str(cfg)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    for proc, (_, err) in zip(procs, outs):
        assert proc.returncode == 0, err[-3000:]
    runs = sorted(p for p in (tmp_path / "runs").iterdir() if p.is_dir())
    assert len(runs) == 2 and all(r.name.endswith(("_rel", "_rel-1")) for r in runs)
    # One entry per split, no temp or half entries: the second process waited, then reused it.
    entries = sorted(p.name for p in (tmp_path / "cache").iterdir() if p.is_dir())
    assert len(entries) == 2 and not any(n.startswith(".") for n in entries)
    for entry in entries:
        assert json.loads((tmp_path / "cache" / entry / "meta.json").read_text())["key"] == entry
    assert_same_weights(runs[0] / "model" / "model.safetensors", runs[1] / "model" / "model.safetensors")


def test_fresh_run_that_loses_the_race_for_its_directory_fails_clearly(tmp_path, monkeypatch):
    """B checked `--run-dir X` was empty, but A took X's lock first and started there: B must not join."""
    from tunelab.pipeline import train as run_mod

    cfg = _config(tmp_path)
    target = tmp_path / "runs" / "raced"
    real = run_mod.resolve_run_dir

    def resolve_then_lose_the_race(cfg, resume, run_dir):
        path, ckpt = real(cfg, resume, run_dir)  # the emptiness check passes...
        (path / "run.json").write_text('{"run_format": 1, "name": "other"}')  # ...then A starts here
        return path, ckpt

    monkeypatch.setattr(run_mod, "resolve_run_dir", resolve_then_lose_the_race)
    res = _train(str(cfg), "--run-dir", str(target))
    assert res.exit_code == 2 and "another run started in this directory first" in res.output, res.output
    assert json.loads((target / "run.json").read_text())["name"] == "other"  # A's files untouched
    assert not (target / "config.yaml").exists()
