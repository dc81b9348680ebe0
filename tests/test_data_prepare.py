"""validate_from_config / prepare_from_config: summary output, tokenization into the cache, reuse."""

from __future__ import annotations

from rich.console import Console

from data_support import FakeTask, labelled_rows, make_cfg, write_csv
from tiny import make_tokenizer
from tunelab.pipeline.prepare import prepare_from_config, validate_from_config


def _console():
    return Console(record=True, width=200, emoji=False)


def test_validate_prints_rows_labels_and_warnings(tmp_path):
    rows = labelled_rows({"billing": 30, "login": 10, "solo": 1})
    write_csv(tmp_path / "train.csv", rows)
    write_csv(tmp_path / "test.csv", [{"id": "t1", "text": rows[0]["text"]}])
    console = _console()
    splits = validate_from_config(make_cfg(tmp_path, test_file=str(tmp_path / "test.csv")), console)
    out = console.export_text()
    # off a terminal: one line per split, the path whole
    assert f"  split: train; source: {tmp_path}/train.csv (random 10% holdout, seed 42); rows: 37; labels" in out
    assert "split: validation;" in out and "; rows: 4;" in out
    assert f"  split: test; source: {tmp_path}/test.csv; rows: 1\n" in out  # no labels in the test file
    assert "3 labels: billing, login, solo" in out
    assert "warning:" in out and "train.csv: column label: 1 label(s) with a single example" in out
    assert "leakage: 1 test row(s)" in out
    assert len(splits.train) == 37


def test_prepare_tokenizes_every_split_and_reuses_cache(tmp_path, monkeypatch):
    write_csv(tmp_path / "train.csv", labelled_rows({"a": 12, "b": 8}))
    write_csv(tmp_path / "test.csv", [{"id": "t1", "text": "brand new text"}])
    make_tokenizer().save_pretrained(tmp_path / "model")  # make_cfg points model.name_or_path here
    tasks: list[FakeTask] = []

    def fake_task_from_config(cfg, label_names=None):
        tasks.append(FakeTask(cfg, label_names))
        return tasks[-1]

    monkeypatch.setattr("tunelab.tasks.base.task_from_config", fake_task_from_config)
    cfg = make_cfg(tmp_path, test_file=str(tmp_path / "test.csv"), max_length=4)
    console = _console()
    prepared = prepare_from_config(cfg, console)
    assert set(prepared.datasets) == {"train", "validation", "test"}
    assert len(prepared.datasets["train"]) == 18 and "labels" not in prepared.datasets["test"].column_names
    assert prepared.stats["train"]["max"] == 4 and prepared.stats["train"]["truncation_rate"] == 1.0
    out = console.export_text()
    assert "token lengths (max_length 4)" in out and "100.0%" in out
    assert tasks[0].calls > 0
    again = prepare_from_config(cfg, _console())
    assert tasks[1].calls == 0, "second prepare must come from the cache"
    assert again.datasets["train"]["input_ids"] == prepared.datasets["train"]["input_ids"]


def test_cli_validate_ok(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from tunelab.cli import app

    write_csv(tmp_path / "train.csv", labelled_rows({"a": 10, "b": 10}))
    (tmp_path / "cfg.yaml").write_text(
        "task: {type: classification}\ndata: {train_file: train.csv}\nmodel: {name_or_path: x}\n"
    )
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["validate", "cfg.yaml"])
    assert result.exit_code == 0, result.output
    assert "data OK (0 warning(s))" in result.output
    assert not (tmp_path / ".tunelab_cache").exists()


def test_validate_tables_have_no_empty_columns(tmp_path):
    from gen_support import dialogue_frame, sft_frame
    from tunelab.config.loader import validate_config

    dialogue_frame(20).to_csv(tmp_path / "d.csv", index=False)
    sft_frame(20).to_csv(tmp_path / "s.csv", index=False)
    outs = {}
    for kind, task, path in (
        ("summarization", {"type": "summarization"}, "d.csv"),
        ("sft", {"type": "sft", "label_set": ["spam", "ham"]}, "s.csv"),
    ):
        cfg = validate_config(
            {"task": task, "data": {"train_file": str(tmp_path / path)}, "model": {"name_or_path": "m"}}
        )
        console = Console(record=True, width=200, force_terminal=True)
        validate_from_config(cfg, console)
        outs[kind] = console.export_text()
    header = next(ln for ln in outs["summarization"].splitlines() if "split" in ln)
    assert [c.strip() for c in header.strip("┃ ").split("┃")] == ["split", "source", "rows"]  # no unnamed column
    assert "ham: " in outs["sft"] and "spam: " in outs["sft"]  # the sft labels column is filled
