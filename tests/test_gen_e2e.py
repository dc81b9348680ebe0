"""End to end through the CLI: train -> metrics (ROUGE on generated validation) -> predict -> evaluate
for an encoder-decoder (tiny BART), a decoder with chat template + LoRA (tiny Qwen3) and
instruction classification (tiny Llama + LoRA)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from gen_support import dialogue_frame, sft_frame
from tiny import tiny_model_dir
from tunelab.cli import app

pytestmark = pytest.mark.slow


def invoke(*args: str):
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def write_files(root: Path, frame: pd.DataFrame, target: str) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    paths = {"train": root / "train.csv", "test": root / "test.csv", "labelled": root / "labelled.csv"}
    frame.to_csv(paths["train"], index=False)
    held = frame.iloc[[5, 2, 7, 0]].copy()  # not in id order: outputs must follow the input order
    held.drop(columns=[target]).to_csv(paths["test"], index=False)
    held.to_csv(paths["labelled"], index=False)
    return paths


def write_config(root: Path, model_dir: Path, files: dict[str, Path], task: dict, **sections) -> Path:
    cfg = {
        "name": "gen-e2e",
        "output_dir": str(root / "runs"),
        "task": task,
        "data": {
            "train_file": str(files["train"]),
            "test_file": str(files["test"]),
            "max_length": 64,
            "validation_split": 0.25,
            "cache_dir": str(root / "cache"),
        },
        "model": {"name_or_path": str(model_dir)},
        "training": {
            "max_steps": 4,
            "per_device_train_batch_size": 8,
            "per_device_eval_batch_size": 8,
            "logging_steps": 2,
            "learning_rate": 5e-3,
            "warmup_steps": 0,
            "eval_strategy": "no",
            "save_strategy": "no",
        },
        "inference": {"batch_size": 4, "generation": {"max_new_tokens": 8}},
        "tracking": "none",
        "doctor": {"enabled": False},
    }
    for key, value in sections.items():
        cfg[key] = {**cfg.get(key, {}), **value} if isinstance(value, dict) else value
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def only_run(root: Path) -> Path:
    runs = [p for p in (root / "runs").iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_bart_summarization_train_predict_rouge(tmp_path):
    files = write_files(tmp_path / "data", dialogue_frame(24), "summary")
    model = tiny_model_dir(tmp_path / "models", "bart", head="seq2seq")
    # eval + save by steps with load-best: checkpoints are picked by eval loss (ROUGE needs generation)
    config = write_config(
        tmp_path,
        model,
        files,
        {"type": "summarization"},
        training={"eval_strategy": "steps", "eval_steps": 2, "save_strategy": "steps", "save_steps": 2},
        inference={"id_column": "id", "prediction_column": "summary"},
        evaluation={"rouge": {"tokenizer": "kiwi"}},
    )
    invoke("train", str(config))
    run = only_run(tmp_path)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["primary_metric"] == "rouge_sum"
    val = metrics["validation"]
    assert val["rouge_sum"] == pytest.approx(val["rouge1"] + val["rouge2"] + val["rougeL"])
    assert any("eval_loss" in json.loads(line) for line in (run / "history.jsonl").read_text().splitlines())
    assert len(read_jsonl(run / "predictions" / "validation.jsonl")) == val["n"]

    out = tmp_path / "submission.csv"
    invoke("predict", str(run), "--input", str(files["test"]), "--output", str(out))
    sub = pd.read_csv(out, keep_default_na=False)  # a 4-step model may well produce empty summaries
    assert list(sub.columns) == ["id", "summary"]
    assert sub["id"].tolist() == pd.read_csv(files["test"])["id"].tolist()
    # the same model predicted the test file at the end of training: identical outputs. The run's
    # own files use fixed names (id, prediction, reference) whatever the submission's names are.
    at_train = {r["id"]: r["prediction"] for r in read_jsonl(run / "predictions" / "test.jsonl")}
    assert sub.set_index("id")["summary"].to_dict() == at_train
    assert "test" not in metrics  # an unlabelled test file is predicted, not scored
    assert_report_works(run)


def assert_report_works(run: Path) -> None:
    """`tunelab report` reads the run's predictions (it failed on every non-classification run)."""
    invoke("report", str(run))
    text = (run / "report.md").read_text(encoding="utf-8")
    assert "## Metrics" in text and (run / "report.html").is_file()


def test_causal_lora_chat_template_summarization(tmp_path):
    files = write_files(tmp_path / "data", dialogue_frame(24), "summary")
    model = tiny_model_dir(tmp_path / "models", "qwen3", head="causal", chat_template=True)
    config = write_config(
        tmp_path,
        model,
        files,
        {"type": "summarization", "system_prompt": "Summarize."},
        model={"lora": {"enabled": True, "r": 4, "alpha": 8}},
        inference={"prediction_column": "summary"},
    )
    invoke("train", str(config))
    run = only_run(tmp_path)
    assert (run / "model" / "adapter_config.json").is_file()  # adapters saved with the run
    # no pickle (the Trainer's training_args.bin) and no peft model-card template in model/
    assert not {"training_args.bin", "README.md"} & {p.name for p in (run / "model").iterdir()}
    assert "rouge_sum" in json.loads((run / "metrics.json").read_text())["validation"]
    out = tmp_path / "submission.jsonl"
    invoke("predict", str(run), "--input", str(files["test"]), "--output", str(out))
    rows = read_jsonl(out)
    at_train = {r["id"]: r["prediction"] for r in read_jsonl(run / "predictions" / "test.jsonl")}
    assert {r["id"]: r["summary"] for r in rows} == at_train  # reloaded adapters predict identically
    assert_report_works(run)
    merged = tmp_path / "merged"
    invoke("export", str(run), "--output", str(merged), "--merge")
    assert (merged / "model.safetensors").is_file() and (merged / "tokenizer.json").is_file()


def test_sft_instruction_classification_always_returns_a_label(tmp_path):
    files = write_files(tmp_path / "data", sft_frame(24), "response")
    model = tiny_model_dir(tmp_path / "models", "llama", head="causal")
    config = write_config(
        tmp_path,
        model,
        files,
        {"type": "sft", "label_set": ["spam", "ham"], "prompt_template": "spam or ham?\n{instruction}\nAnswer:"},
        model={"lora": {"enabled": True, "r": 4, "target_modules": "all-linear"}},
        inference={"prediction_column": "label", "generation": {"max_new_tokens": 3}},
        data={"test_file": str(files["labelled"])},  # labelled: scored into metrics.json `test`
    )
    invoke("train", str(config))
    run = only_run(tmp_path)
    metrics = json.loads((run / "metrics.json").read_text())
    val = metrics["validation"]
    assert 0.0 <= val["accuracy"] <= 1.0 and "macro_f1" in val
    # prediction_column `label` equals the gold column's name: the prediction must survive
    rows = read_jsonl(run / "predictions" / "validation.jsonl")
    assert rows and all(set(r) >= {"id", "prediction", "label"} for r in rows)
    assert all(r["prediction"] in {"spam", "ham"} for r in rows)
    assert metrics["test"]["num_samples"] == 4 and "macro_f1" in metrics["test"]
    test_rows = read_jsonl(run / "predictions" / "test.jsonl")
    assert [r["label"] for r in test_rows] == pd.read_csv(files["labelled"])["response"].tolist()
    assert_report_works(run)
    out = tmp_path / "labels.csv"
    invoke("predict", str(run), "--input", str(files["test"]), "--output", str(out))
    sub = pd.read_csv(out)
    assert set(sub["label"]) <= {"spam", "ham"} and len(sub) == 4
