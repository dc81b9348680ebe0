"""Atomic writes and run directories."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tunelab import io as io_mod
from tunelab import runs
from tunelab.config import validate_config
from tunelab.errors import RunDirError
from tunelab.io import atomic_dir, atomic_path, atomic_write_json, read_jsonl, replace_dir


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


@pytest.mark.parametrize(
    "umask,file_mode,dir_mode", [(0o022, 0o644, 0o755), (0o002, 0o664, 0o775), (0o077, 0o600, 0o700)]
)
def test_outputs_respect_the_umask(tmp_path, umask, file_mode, dir_mode):
    # mkstemp/mkdtemp create 0600/0700 whatever the umask: a run dir shared with a team was unreadable.
    old = os.umask(umask)
    try:
        atomic_write_json(tmp_path / "metrics.json", {"a": 1})
        with atomic_dir(tmp_path / "model") as d:
            (d / "w").write_text("v1")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "metrics.json").stat().st_mode) == file_mode
    assert stat.S_IMODE((tmp_path / "model").stat().st_mode) == dir_mode


def _dir(path, text):
    path.mkdir()
    (path / "w").write_text(text)
    return path


def test_replace_dir_swaps_in_one_step_where_the_os_can(tmp_path, monkeypatch):
    if not io_mod._exchange(_dir(tmp_path / "a", "a"), _dir(tmp_path / "b", "b")):
        pytest.skip("no renameat2(RENAME_EXCHANGE) here")
    target, staged = _dir(tmp_path / "model", "v1"), _dir(tmp_path / "staged", "v2")

    def no_two_step(*_a):  # the two-rename fallback has a moment with no model/
        raise AssertionError("os.replace used: the swap was not atomic")

    monkeypatch.setattr(io_mod.os, "replace", no_two_step)
    replace_dir(staged, target)
    assert (target / "w").read_text() == "v2" and not staged.exists()
    assert not (tmp_path / ".model.old").exists()


def test_a_crash_mid_fallback_swap_keeps_the_old_dir_and_the_next_start_restores_it(tmp_path, monkeypatch):
    run = tmp_path / "run"
    run.mkdir()
    target, staged = _dir(run / runs.MODEL, "v1"), _dir(tmp_path / "staged", "v2")
    monkeypatch.setattr(io_mod, "_exchange", lambda a, b: False)  # a filesystem without the swap
    real_replace, calls = io_mod.os.replace, []

    def crash_on_second(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed between the two renames")
        return real_replace(src, dst)

    monkeypatch.setattr(io_mod.os, "replace", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        replace_dir(staged, target)
    monkeypatch.setattr(io_mod.os, "replace", real_replace)
    assert not target.exists() and (run / ".model.old" / "w").read_text() == "v1"
    assert (runs.final_model_dir(run) / "w").read_text() == "v1"  # recovered on the next start
    # and the next save does not delete the only copy before its own swap
    staged2 = _dir(tmp_path / "staged2", "v3")
    replace_dir(staged2, target)
    assert (target / "w").read_text() == "v3" and not (run / ".model.old").exists()


def test_latest_name_resolves_the_newest_run_of_a_config_with_a_hyphenated_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = validate_config(
        {
            "name": "dialogsum-bart",
            "task": {"type": "classification"},
            "data": {"train_file": "x"},
            "model": {"name_or_path": "m"},
        }
    )
    other = cfg.model_copy(update={"name": "dialogsum"})
    made = []
    for c, stamp in ((cfg, "20261201T000000Z"), (cfg, "20261202T000000Z"), (other, "20261203T000000Z")):
        d = tmp_path / "runs" / f"{stamp}_{c.name}"
        d.mkdir(parents=True)
        runs.write_run_files(d, c)
        made.append(d)
    clash = tmp_path / "runs" / "20261202T000000Z_dialogsum-bart-1"  # new_run_dir's same-second suffix
    clash.mkdir()
    runs.write_run_files(clash, cfg)
    # --resume found no run of a name with a '-' in it
    assert runs.latest_run_dir(cfg.model_copy(update={"output_dir": "runs"})) == Path("runs") / clash.name
    assert runs.resolve_run_ref("latest:dialogsum-bart") == Path("runs") / clash.name
    assert runs.resolve_run_ref("latest:dialogsum") == Path("runs") / made[2].name
    assert runs.load_run("latest:dialogsum").info["name"] == "dialogsum"
    assert runs.resolve_run_ref(f"latest:{tmp_path / 'runs'}/dialogsum-bart") == clash
    assert runs.resolve_run_ref("runs/x") == Path("runs/x")  # a path stays a path
    with pytest.raises(RunDirError, match="no run named 'nope' under runs/"):
        runs.resolve_run_ref("latest:nope")
