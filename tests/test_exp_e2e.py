"""End to end through the CLI with real `tunelab train` children on a tiny model:
three variants (one failing), summary, TTA comparison, ensemble vs best single, report, resume."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tunelab.cli import app

sys.path.insert(0, str(Path(__file__).parent))

TEXTS = {
    "billing": ["my card was charged twice", "refund my payment please", "the invoice is wrong"],
    "delivery": ["where is my parcel", "the package has not arrived", "shipping is very late"],
    "login": ["I cannot log in", "please reset my password", "my account is locked"],
}


def _data(root: Path) -> Path:
    rows, i = ["id,text,label"], 0
    for rep in range(5):
        for label, texts in TEXTS.items():
            for t in texts:
                rows.append(f"{i},{t} {'!!' * (rep % 2)} case {rep},{label}")
                i += 1
    path = root / "train.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.slow
def test_experiment_with_a_failing_variant_end_to_end(tmp_path, monkeypatch):
    from tiny import tiny_model_dir

    monkeypatch.chdir(tmp_path)
    model = tiny_model_dir(tmp_path / "models", "bert", head="classification", num_labels=3)
    _data(tmp_path)
    base = {
        "task": {"type": "classification"},
        "data": {"train_file": "train.csv", "max_length": 16, "validation_split": 0.3},
        "model": {"name_or_path": str(model)},
        "training": {
            "max_steps": 2,
            "per_device_train_batch_size": 8,
            "logging_steps": 1,
            "eval_strategy": "no",
            "save_strategy": "no",
            "load_best_model_at_end": False,
            "warmup_steps": 0,
        },
        "inference": {"tta": {"views": ["original", "tail", "normalized"]}},
        "tracking": "none",
    }
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    spec = {
        "name": "e2e",
        "base": "base.yaml",
        "output_dir": "experiments",
        "tta": {"enabled": True},
        "max_parallel": 2,
        "variants": [
            {"name": "lr-high", "overrides": {"training.learning_rate": 5e-3}},
            {"name": "lr-low", "overrides": {"training.learning_rate": 1e-3, "training.seed": 7}},
            {"name": "broken", "overrides": {"model.name_or_path": str(tmp_path / "no-such-model")}},
        ],
    }
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(spec))
    runner = CliRunner()
    result = runner.invoke(app, ["experiment", "exp.yaml"])
    assert result.exit_code == 0, result.output
    exp_dir = tmp_path / "experiments" / "e2e"
    exp = json.loads((exp_dir / "experiment.json").read_text())
    runs = exp["runs"]
    assert runs["lr-high"]["status"] == "ok" and runs["lr-low"]["status"] == "ok"
    broken = runs["broken"]
    assert broken["status"] == "failed" and broken["error"]["class"] == "ModelError"
    assert "no-such-model" in broken["error"]["message"] and broken["log_tail"]
    # summary with the real run's numbers
    summary = json.loads((exp_dir / "summary.json").read_text())
    ok_row = next(r for r in summary["runs"] if r["run"] == "lr-high")
    assert ok_row["parameters"] > 0 and ok_row["trainable"] > 0 and ok_row["samples_per_s"] > 0
    # the summary's number is the run's own final validation score, not a stale or default one
    run_metrics = json.loads((exp_dir / runs["lr-high"].get("run_dir", "runs/lr-high") / "metrics.json").read_text())
    assert ok_row["primary"] == pytest.approx(run_metrics["validation"][run_metrics["primary_metric"]])
    # TTA measured against no TTA on validation, per successful run
    for name in ("lr-high", "lr-low"):
        tta = exp["tta"][name]
        assert set(tta["per_view"]) == {"original", "tail", "normalized"}
        assert tta["without"] == tta["per_view"]["original"] and "TTA" in tta["verdict"]
    # ensemble vs best single on the same validation rows
    result = runner.invoke(app, ["ensemble", str(exp_dir)])
    assert result.exit_code == 0, result.output
    ens = json.loads((exp_dir / "ensemble.json").read_text())
    assert ens["members"] == ["lr-high", "lr-low"] and ens["validation_rows"] == 14
    assert ens["verdict"].startswith(f"ensemble ({ens['chosen']})")
    # report
    result = runner.invoke(app, ["report", str(exp_dir)])
    assert result.exit_code == 0, result.output
    html = (exp_dir / "report.html").read_text()
    assert "ModelError" in html and ens["verdict"] in html and exp["tta"]["lr-high"]["verdict"] in html
    # resume is covered with light children in test_exp_runner.py; here: a finished experiment
    # re-run with --only on the failed variant touches nothing else
    before = {n: r["finished_utc"] for n, r in exp["runs"].items()}
    result = runner.invoke(app, ["experiment", "exp.yaml", "--only", "broken"])
    again = json.loads((exp_dir / "experiment.json").read_text())
    assert again["runs"]["broken"]["attempts"] == 2
    assert all(again["runs"][n]["finished_utc"] == before[n] for n in ("lr-high", "lr-low"))
    assert again["tta"]["lr-high"] == exp["tta"]["lr-high"]  # reused, not recomputed
