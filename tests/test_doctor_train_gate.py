"""`tunelab train` runs doctor's preflight first: an error finding stops it before the first step
(exit 2, one line naming the finding, preflight.json in the run directory, no model), and
`--skip-doctor` trains anyway. `tunelab doctor` reports the same finding without training."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from tiny import CORPUS, tiny_model_dir
from tunelab.cli import app

pytestmark = pytest.mark.slow


def write_config(root: Path) -> Path:
    rows = [{"id": i, "text": f"{CORPUS[i % 14]} {i}", "label": f"c{i % 4}"} for i in range(48)]
    pd.DataFrame(rows).to_csv(root / "train.csv", index=False)
    model = tiny_model_dir(root / "models", "bert", head="base")
    cfg = {
        "name": "gate",
        "output_dir": str(root / "runs"),
        "task": {"type": "classification"},
        "data": {
            "train_file": str(root / "train.csv"),
            "validation_split": 0.25,
            "max_length": 32,
            "cache_dir": str(root / "cache"),
        },
        # the seed's failure, planted: a fresh head initialised far too large (loss >> ln(4))
        "model": {"name_or_path": str(model), "head_init_std": 5.0},
        "training": {
            "max_steps": 2,
            "per_device_train_batch_size": 8,
            "logging_steps": 1,
            "warmup_steps": 0,
            "eval_strategy": "no",
            "save_strategy": "no",
        },
        "tracking": "none",
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def error_ids(report: dict) -> set[str]:
    return {f["id"] for f in report["findings"] if f["severity"] == "error"}


def test_train_runs_doctor_first_stops_on_errors_and_skip_doctor_skips(tmp_path):
    config = write_config(tmp_path)
    runner = CliRunner()

    result = runner.invoke(app, ["train", str(config)])
    assert result.exit_code == 2, result.output
    error_line = next(ln for ln in result.stderr.splitlines() if ln.startswith("error:"))
    assert "preflight found" in error_line and "loss.initial" in error_line
    assert "--skip-doctor" in result.stderr and "model.head_init_std" in result.stderr
    (stopped,) = (tmp_path / "runs").iterdir()
    assert "loss.initial" in error_ids(json.loads((stopped / "preflight.json").read_text()))
    assert not (stopped / "model").exists() and not (stopped / "metrics.json").exists()  # not a single step

    result = runner.invoke(app, ["doctor", str(config), "--json"])
    assert result.exit_code == 1, result.output
    assert "loss.initial" in error_ids(json.loads(result.stdout))

    result = runner.invoke(app, ["train", str(config), "--skip-doctor"])
    assert result.exit_code == 0, result.output
    (trained,) = [p for p in (tmp_path / "runs").iterdir() if p != stopped]
    assert (trained / "metrics.json").is_file() and not (trained / "preflight.json").exists()

    # the fix doctor names works: the same config with a small head passes the gate and trains
    result = runner.invoke(app, ["train", str(config), "--set", "model.head_init_std=0.02"])
    assert result.exit_code == 0, result.output
    (fixed,) = [p for p in (tmp_path / "runs").iterdir() if p not in (stopped, trained)]
    assert json.loads((fixed / "preflight.json").read_text())["ok"]
