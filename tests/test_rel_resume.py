"""Guarantee 1 and 2: SIGKILL anywhere / Ctrl-C, then `--resume`, ends bit-identical to an uninterrupted run.

Faults are real signals: SIGKILL cannot be caught, so nothing of ours runs after it. Where a kill
from outside cannot be timed (inside a checkpoint save, between two steps of a tiny model) the
process sends it to itself at a named point (TUNELAB_FAULT, see tunelab.safety.faults).
Everything runs in fp32 on CPU with a fixed seed; "identical" means equal bits of every weight of
model/, equal metrics.json and equal history.jsonl (timings aside).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from rel_support import TUNELAB, assert_same_run, make_project, tunelab

pytestmark = pytest.mark.slow  # each case is two `tunelab train` processes (~10-30 s on 2 cores)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("rel_resume")
    cfg = make_project(root)
    base = root / "runs" / "baseline"
    res = tunelab("train", str(cfg), "--run-dir", str(base))
    assert res.returncode == 0, res.stderr[-3000:]
    return cfg, base


def _out(res) -> str:
    return " ".join((res.stderr + res.stdout).split())  # rich wraps long lines at the terminal width


def _killed(res) -> bool:
    return res.returncode == -9


def test_kill_between_steps_with_corrupt_last_checkpoint(project):
    cfg, base = project
    run = base.parent / "kill_step"
    res = tunelab("train", str(cfg), "--run-dir", str(run), env={"TUNELAB_FAULT": "sigkill@step:8"})
    assert _killed(res), res.stderr[-2000:]
    ckpts = sorted(p.name for p in (run / "checkpoints").glob("checkpoint-*"))
    assert ckpts == ["checkpoint-3", "checkpoint-6"]
    assert not (run / "model").exists()
    # Bit rot in the newest checkpoint: resume must notice (manifest checksum) and fall back.
    weights = run / "checkpoints" / "checkpoint-6" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    res = tunelab("train", str(cfg), "--run-dir", str(run), "--resume")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "checkpoint-6: checksum mismatch in model.safetensors" in _out(res)
    assert "from checkpoint-3" in _out(res)
    assert_same_run(base, run)


def test_kill_while_writing_checkpoint(project):
    cfg, base = project
    run = base.parent / "kill_save"
    res = tunelab("train", str(cfg), "--run-dir", str(run), env={"TUNELAB_FAULT": "sigkill@save:9"})
    assert _killed(res), res.stderr[-2000:]
    # The half-published checkpoint is only in staging, never under its real name.
    assert (run / "checkpoints" / ".staging" / "checkpoint-9").is_dir()
    assert not (run / "checkpoints" / "checkpoint-9").exists()
    res = tunelab("train", str(cfg), "--run-dir", str(run), "--resume")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "from checkpoint-6" in _out(res)
    assert not (run / "checkpoints" / ".staging").exists()
    assert_same_run(base, run)


def test_kill_during_tokenization(project, tmp_path):
    cfg, base = project
    run = base.parent / "kill_tok"
    cache = ["--set", f"data.cache_dir={tmp_path / 'fresh_cache'}"]  # a miss, so tokenization really runs
    res = tunelab("train", str(cfg), *cache, "--run-dir", str(run), env={"TUNELAB_FAULT": "sigkill@tokenize"})
    assert _killed(res), res.stderr[-2000:]
    assert list((tmp_path / "fresh_cache").glob(".*.tmp")), "expected the killed writer's temp entry"
    assert not [p for p in (tmp_path / "fresh_cache").iterdir() if not p.name.startswith(".")]  # nothing readable
    res = tunelab("train", str(cfg), *cache, "--run-dir", str(run), "--resume")
    assert res.returncode == 0, res.stderr[-3000:]
    assert_same_run(base, run)


def test_ctrl_c_saves_checkpoint_and_prints_resume_command(project):
    cfg, base = project
    run = base.parent / "ctrl_c"
    # A real SIGINT, sent by the process to itself right after step 4 so the test is not timing-bound.
    res = tunelab("train", str(cfg), "--run-dir", str(run), env={"TUNELAB_FAULT": "sigint@step:4"})
    assert res.returncode == 130, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    assert (run / "checkpoints" / "checkpoint-4" / "tunelab_manifest.json").is_file()
    assert not (run / "model").exists()  # an interrupted run is not presented as finished
    m = re.search(r"resume with: (tunelab train [^\n]*--resume)", res.stderr)  # one unwrapped line
    assert m, res.stderr[-2000:]
    argv = shlex.split(m.group(1))
    assert argv[-1] == "--resume" and argv[argv.index("--run-dir") + 1] == str(run)
    res = tunelab(*argv[1:])  # exactly the printed command
    assert res.returncode == 0, res.stderr[-3000:]
    assert "from checkpoint-4" in _out(res)
    assert_same_run(base, run)
    assert Path(TUNELAB).exists()
