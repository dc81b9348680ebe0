"""What a training log shows: our lines, not the libraries' noise, and no escape codes in a file.

The end-to-end tests run `tunelab train` as a user would, with stdout and stderr going to a file
(CI, nohup, Slurm), on a classifier whose head is new (transformers' load report) and on a BART
whose best checkpoint is reloaded at the end (tied weights reported as "missing keys").
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gen_support import dialogue_frame
from tiny import tiny_model_dir
from tunelab import ui

NOISE = (
    "\x1b[",  # escape codes
    "LOAD REPORT",
    "Loading weights",
    "Writing model shards",
    "Token indices sequence length",
    "is_gradient_checkpointing",
    "'pin_memory' argument",
    "missing keys",
    "Warning:",  # python warnings (FutureWarning, UserWarning) printed with their source line
    "warnings.warn(",
    "[transformers]",
)

REPORT = (
    "\x1b[1mBertForSequenceClassification LOAD REPORT\x1b[0m from: /m\n"
    "Key               | Status  | \n------------------+---------+-\n"
    "classifier.weight | \x1b[31mMISSING\x1b[0m | \nclassifier.bias   | \x1b[31mMISSING\x1b[0m | \n"
    "\nNotes:\n- \x1b[31mMISSING:\x1b[0m\tthose params were newly initialized ..."
)


def test_library_messages_become_one_plain_line_or_nothing():
    assert (
        ui.library_line(REPORT)
        == "weights newly initialised (not in the checkpoint): classifier.weight, classifier.bias"
    )
    assert ui.library_line("Token indices sequence length is longer than the specified maximum sequence length") is None
    assert ui.library_line("\x1b[33msomething\nelse\x1b[0m") == "something else"


def _train(tmp_path: Path, cfg: dict) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    log = tmp_path / "train.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1", "COLUMNS": "80"}
    with open(log, "w") as fh:
        proc = subprocess.run(
            [sys.executable, "-m", "tunelab.cli", "train", str(path)], stdout=fh, stderr=subprocess.STDOUT, env=env
        )
    text = log.read_text(encoding="utf-8")
    assert proc.returncode == 0, text
    return text


def _base(tmp_path: Path, model: Path, train: Path, task: dict, **training) -> dict:
    return {
        "name": "quiet",
        "output_dir": str(tmp_path / "runs"),
        "task": task,
        "data": {
            "train_file": str(train),
            "validation_split": 0.25,
            "max_length": 48,
            "cache_dir": str(tmp_path / "c"),
        },
        "model": {"name_or_path": str(model)},
        "training": {
            "num_train_epochs": 2,
            "per_device_train_batch_size": 8,
            "learning_rate": 1e-3,
            "logging_steps": 2,
            "eval_strategy": "epoch",
            "save_strategy": "epoch",
            **training,
        },
        "tracking": "none",
    }


@pytest.mark.slow
def test_a_classification_training_log_in_a_file_is_quiet_and_plain(tmp_path):
    import pandas as pd

    from test_pipeline_e2e import make_data

    data = make_data(tmp_path / "data")
    frame = pd.read_csv(data["train"])
    dup = frame.iloc[:12].assign(id=[f"dup{i}" for i in range(12)])  # same texts again: leakage
    pd.concat([frame, dup]).to_csv(data["train"], index=False)
    model = tiny_model_dir(tmp_path / "models", "bert", head="base")
    text = _train(tmp_path, _base(tmp_path, model, data["train"], {"type": "classification"}))
    assert [n for n in NOISE if n in text] == []
    assert text.count("leakage:") == 1, text  # the data warning, not again as a preflight finding
    # long paths stay whole on one line (no 80-column wrapping in a log file)
    metrics_line = next(ln for ln in text.splitlines() if ln.startswith("metrics:"))
    assert str(tmp_path / "runs") in metrics_line and metrics_line.endswith("/metrics.json")
    line = next(ln for ln in text.splitlines() if ln.startswith("weights newly initialised (not in the checkpoint): "))
    assert sorted(line.split(": ", 1)[1].split(", ")) == ["classifier.bias", "classifier.weight"]
    assert "done: validation macro_f1" in text


@pytest.mark.slow
def test_a_summarization_log_reloading_tied_weights_says_nothing_about_missing_keys(tmp_path):
    train = tmp_path / "train.csv"
    dialogue_frame(24).to_csv(train, index=False)
    model = tiny_model_dir(tmp_path / "models", "bart", head="seq2seq")
    cfg = _base(tmp_path, model, train, {"type": "summarization"}, load_best_model_at_end=True)
    cfg["inference"] = {"generation": {"max_new_tokens": 8}}
    cfg["doctor"] = {"enabled": False}
    text = _train(tmp_path, cfg)
    assert [n for n in NOISE if n in text] == []
    assert "done: validation rouge_sum" in text


def test_best_checkpoint_report_is_silent_for_tied_weights_and_names_real_gaps(tmp_path, capsys):
    from types import SimpleNamespace

    import torch
    from transformers import AutoModelForSeq2SeqLM

    from tunelab.training.best_load import BestLoadReportMixin, tied_elsewhere

    model = AutoModelForSeq2SeqLM.from_pretrained(tiny_model_dir(tmp_path, "bart", head="seq2seq"))
    tied = ["model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight", "lm_head.weight"]
    state = {k: v for k, v in model.state_dict().items() if k not in tied}
    result = model.load_state_dict(state, strict=False)
    assert set(result.missing_keys) == set(tied) and tied_elsewhere(model, result.missing_keys) == set(tied)
    capsys.readouterr()  # (building the tiny model printed its own bars)
    BestLoadReportMixin._issue_warnings_after_load(SimpleNamespace(model=model), result)
    assert capsys.readouterr().err == ""
    gap = "model.encoder.layers.0.fc1.weight"
    result = model.load_state_dict({k: v for k, v in state.items() if k != gap}, strict=False)
    BestLoadReportMixin._issue_warnings_after_load(SimpleNamespace(model=model), result)
    err = " ".join(capsys.readouterr().err.split())
    assert f"best checkpoint: 1 weight(s) missing, kept from the last step: {gap}" in err
    assert "embed_tokens" not in err
    assert torch.equal(model.lm_head.weight, model.model.shared.weight)


def test_tables_off_a_terminal_are_plain_lines_without_empty_columns():
    import io

    from rich.console import Console

    rows = [["train", "runs/a/very/long/path/" + "x" * 120 + "/train.csv", "270", ""], ["test", "t.csv", "40", ""]]
    buf = io.StringIO()
    ui.print_rows(
        "data: summarization", ["split", "source", "rows", "labels (top)"], rows, console=ui.console(file=buf)
    )
    text = buf.getvalue()
    assert text.splitlines() == [
        "data: summarization",
        f"  split: train; source: {rows[0][1]}; rows: 270",  # one line, the path whole
        "  split: test; source: t.csv; rows: 40",
    ]
    assert "labels" not in text and "\x1b[" not in text and "┃" not in text
    term = io.StringIO()
    console = Console(file=term, force_terminal=True, width=100)
    ui.print_rows("data", ["split", "rows", "labels (top)"], [["train", "3", ""]], console=console)
    assert "split" in term.getvalue() and "labels" not in term.getvalue()


def test_doctor_findings_in_a_log_file_are_one_line_each():
    import io

    from tunelab.diagnostics.findings import info, warning
    from tunelab.pipeline.doctor import print_findings

    long_fix = "point model.name_or_path at /a/very/long/path/" + "y" * 100 + "/model"
    findings = [
        warning("loss.initial", "initial loss 9.1 is far above ln(3)", long_fix, loss=9.1),
        info("x.y", "ok", "-"),
    ]
    buf = io.StringIO()
    print_findings(findings, file=buf)
    lines = buf.getvalue().splitlines()
    assert lines[0] == "tunelab doctor"
    assert (
        lines[1].startswith("  id: loss.initial; severity: warning; title: initial loss 9.1") and long_fix in lines[1]
    )
    assert lines[2].startswith("  id: x.y; severity: info") and lines[3].startswith("ready to train: 0 error(s)")
    assert "\x1b[" not in buf.getvalue() and "│" not in buf.getvalue()


def test_the_finished_training_bar_shows_the_run_average(monkeypatch):
    from types import SimpleNamespace

    from tunelab.training import callbacks

    clock = [100.0]
    monkeypatch.setattr(callbacks.time, "perf_counter", lambda: clock[0])
    cb = callbacks.RichProgressCallback()
    args = SimpleNamespace(per_device_train_batch_size=4, gradient_accumulation_steps=1, world_size=1)
    state = SimpleNamespace(is_world_process_zero=True, global_step=0, max_steps=10, num_input_tokens_seen=0)
    cb.on_train_begin(args, state, None)
    for step in range(1, 11):  # 9 slow steps (1 s each), then one fast one
        clock[0] += 1.0 if step < 10 else 0.01
        state.global_step, state.num_input_tokens_seen = step, 100 * step
        cb.on_step_end(args, state, None)
    task = cb.progress.tasks[0]
    assert task.fields["speed"].startswith("400.0 samples/s")  # the last window: 4 samples in 0.01 s
    cb.on_train_end(args, state, None)
    assert task.fields["speed"] == "4.4 samples/s 111 tok/s avg"  # the run: 40 samples in 9.01 s


def test_the_rate_column_is_blank_until_known_and_then_the_run_average():
    from types import SimpleNamespace

    col = ui.RunRateColumn("rows")
    task = SimpleNamespace(elapsed=0.5, completed=0, fields={})
    assert col.render(task).plain == ""  # the generating bar read "None rows/s" before the first batch
    task = SimpleNamespace(elapsed=2.0, completed=10, fields={})
    assert col.render(task).plain == "5.0 rows/s"  # all rows so far over all the time so far
