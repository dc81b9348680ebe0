"""What a run leaves for a user and for `tunelab report`: prediction files with fixed column names,
submission names from the config, numbers formatted by meaning, clean example data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from exp_support import write_run
from tunelab.cli import app
from tunelab.config.loader import load_config, validate_config
from tunelab.experiments.predictions import load_split
from tunelab.inference.predict import run_predictions_frame, submission_columns
from tunelab.reporting.doc import cell, number
from tunelab.tasks.base import Prediction

REPO = Path(__file__).resolve().parents[1]


def _cfg(task: dict, prediction_column: str):
    return validate_config(
        {
            "name": "x",
            "task": task,
            "data": {"train_file": "train.csv"},
            "model": {"name_or_path": "m"},
            "inference": {"prediction_column": prediction_column},
            "tracking": "none",
        }
    )


def test_prediction_configured_as_label_is_never_overwritten_by_the_gold_label():
    cfg = _cfg({"type": "sft", "label_set": ["spam", "ham"]}, "label")
    pred = Prediction(ids=["a", "b"], columns={"label": ["spam", "spam"]})
    frame = run_predictions_frame(pred, cfg, gold=["ham", "spam"])
    assert frame.to_dict(orient="records") == [
        {"id": "a", "prediction": "spam", "label": "ham"},
        {"id": "b", "prediction": "spam", "label": "spam"},
    ]


def test_summary_predictions_use_fixed_names_and_text_gold_is_reference():
    cfg = _cfg({"type": "summarization", "id_column": "fname"}, "summary")
    cfg = cfg.model_copy(update={"inference": cfg.inference.model_copy(update={"id_column": "fname"})})
    frame = run_predictions_frame(Prediction(ids=["d1"], columns={"summary": ["요약"]}), cfg, gold=["정답"])
    assert list(frame.columns) == ["id", "prediction", "reference"]


def test_submission_names_the_prediction_after_the_config_for_classification_too():
    cfg = _cfg({"type": "classification"}, "intent")
    pred = Prediction(ids=[1], columns={"prediction": ["a"], "probability": [0.9]})
    frame = run_predictions_frame(pred, cfg)  # the run's own file keeps `prediction`
    assert list(submission_columns(frame, cfg).columns) == ["id", "intent", "probability"]


def test_report_reads_runs_whose_predictions_carry_the_configured_column(tmp_path):
    # Runs written before the fixed names: validation.jsonl has `summary`, not `prediction`.
    run = tmp_path / "run"
    (run / "predictions").mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"inference": {"prediction_column": "summary"}}))
    rows = [{"id": "d1", "summary": "두 사람", "reference": "두 사람이"}]
    (run / "predictions" / "validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    preds = load_split(run, "validation")
    assert preds.predictions == ["두 사람"] and preds.gold == ["두 사람이"]


@pytest.mark.parametrize(
    "value,text",
    [
        (1.5e-4, "1.5e-4"),
        (3e-5, "3e-5"),
        (17.0, "17"),
        (0.0, "0"),
        (0.97012345, "0.9701"),
        (2.5, "2.5"),
        (50.7, "50.7"),
    ],
)
def test_numbers_are_written_by_their_size(value, text):
    assert number(value) == text
    assert cell(1234.56) == "1,234.6" and cell(12) == "12" and cell(None) == "-"


def test_report_shows_the_learning_rate_and_whole_lengths_as_written(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 20)
    run = write_run(tmp_path / "run", "fmt", np.eye(3)[y] * 0.7 + 0.1, y)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["training"]["learning_rate"] = 1.5e-4
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    stats = {"train": {"rows": 20, "mean": 17.25, "p50": 17.0, "p90": 30.0, "max": 41, "truncation_rate": 0.0}}
    (run / "token_lengths.json").write_text(json.dumps({"max_length": 64, "stats": stats, "lengths": {}}))
    result = CliRunner().invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    md = (run / "report.md").read_text()
    assert "| learning_rate | 1.5e-4 |" in md
    assert "| train | 20 | 17.25 | 17 | 30 | 41 | 0 |" in md


@pytest.mark.parametrize("config", ["sft_classify.yaml", "summarization_bart.yaml", "summarization_causal_lora.yaml"])
def test_shipped_example_data_has_no_leakage(config, monkeypatch):
    from tunelab.data.splits import load_splits

    monkeypatch.chdir(REPO)
    splits = load_splits(load_config(REPO / "examples" / config))
    assert not [w for w in splits.warnings if "leakage" in w]


def test_throughput_plot_puts_samples_and_tokens_on_their_own_axes():
    from tunelab.reporting.charts import _plt, two_axis_figure

    history = [{"step": s, "samples_per_s": 10.0 + s, "tokens_per_s": 2000.0 + 50 * s} for s in range(1, 6)]
    fig = two_axis_figure(history, ["samples_per_s"], ["tokens_per_s"], "throughput", ("samples/s", "tokens/s"))
    left, right = fig.axes
    assert (left.get_ylabel(), right.get_ylabel()) == ("samples/s", "tokens/s")
    # each axis spans its own series, so neither line is flat
    assert left.get_ylim()[1] < 100 and right.get_ylim()[0] > 1000
    _plt().close(fig)
    only = two_axis_figure(history, ["samples_per_s"], ["missing"], "t")
    assert len(only.axes) == 1
    _plt().close(only)
