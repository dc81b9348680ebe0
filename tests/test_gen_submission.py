"""A competition submission from a summarization run, and `tunelab export RUN_DIR --merge` with
its default output, both through the CLI.

Competitions name their columns (`fname,summary` for DialogSum-style tasks): `tunelab predict`
takes the id and summary column names from `inference.id_column` / `inference.prediction_column`
(settable at predict time with --set), keeps the input's row order and writes atomically."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from gen_support import dialogue_frame
from tiny import tiny_model_dir
from tunelab.cli import app

pytestmark = pytest.mark.slow


def invoke(*args: str):
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def train(root: Path, model_type: str, head: str, **model: object) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    dialogue_frame(16).to_csv(root / "train.csv", index=False)
    cfg = {
        "name": f"sub-{model_type}",
        "output_dir": str(root / "runs"),
        "task": {"type": "summarization"},
        "data": {"train_file": str(root / "train.csv"), "max_length": 64, "cache_dir": str(root / "cache")},
        "model": {"name_or_path": str(tiny_model_dir(root / "models", model_type, head=head)), **model},
        "training": {
            "max_steps": 2,
            "per_device_train_batch_size": 8,
            "learning_rate": 5e-3,
            "logging_steps": 1,
            "warmup_steps": 0,
            "eval_strategy": "no",
            "save_strategy": "no",
        },
        "inference": {"batch_size": 4, "generation": {"max_new_tokens": 6}},
        "tracking": "none",
        "doctor": {"enabled": False},
    }
    (root / "config.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    invoke("train", str(root / "config.yaml"))
    (run,) = (root / "runs").iterdir()
    return run


def test_predict_writes_a_submission_with_the_configured_columns(tmp_path):
    run = train(tmp_path, "bart", "seq2seq")
    test = dialogue_frame(5, with_summary=False).rename(columns={"id": "fname"})
    test["fname"] = [f"test_{i}" for i in (3, 0, 4, 1, 2)]  # not sorted: the output keeps this order
    test.to_csv(tmp_path / "test.csv", index=False)
    out = tmp_path / "sub" / "submission.csv"
    out.parent.mkdir()
    invoke(
        "predict",
        str(run),
        "--input",
        str(tmp_path / "test.csv"),
        "--output",
        str(out),
        "--set",
        "inference.id_column=fname",
        "--set",
        "inference.prediction_column=summary",
    )
    sub = pd.read_csv(out, keep_default_na=False)  # a 2-step model may produce empty summaries
    assert list(sub.columns) == ["fname", "summary"]
    assert sub["fname"].tolist() == test["fname"].tolist()
    assert [p.name for p in out.parent.iterdir()] == ["submission.csv"]  # no temp file left behind

    # the default names (id, prediction) when nothing is configured; JSONL by suffix
    invoke(
        "predict",
        str(run),
        "--input",
        str(tmp_path / "test.csv"),
        "--output",
        str(tmp_path / "p.jsonl"),
        "--set",
        "inference.id_column=fname",
    )
    rows = pd.read_json(tmp_path / "p.jsonl", lines=True)
    assert list(rows.columns) == ["fname", "prediction"] and rows["fname"].tolist() == test["fname"].tolist()


def test_export_merge_defaults_to_run_dir_merged(tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    run = train(tmp_path, "llama", "causal", lora={"enabled": True, "r": 4, "alpha": 8, "dropout": 0.0})
    assert (run / "model" / "adapter_config.json").is_file()
    invoke("export", str(run), "--merge")
    merged_dir = run / "merged"
    assert (merged_dir / "model.safetensors").is_file() and (merged_dir / "tokenizer.json").is_file()
    assert not (merged_dir / "adapter_config.json").exists()

    # the merged model computes what base + adapters compute (plain transformers, no peft)
    base_path = yaml.safe_load((tmp_path / "config.yaml").read_text())["model"]["name_or_path"]
    adapted = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_path), str(run / "model")).eval()
    merged = AutoModelForCausalLM.from_pretrained(merged_dir).eval()
    ids = torch.tensor([[5, 17, 42, 9, 3]])
    with torch.no_grad():
        assert torch.allclose(adapted(input_ids=ids).logits, merged(input_ids=ids).logits, atol=1e-5)
    base = AutoModelForCausalLM.from_pretrained(base_path).eval()
    with torch.no_grad():
        # the adapters did something: the merged model is not the base
        assert not torch.allclose(base(input_ids=ids).logits, merged(input_ids=ids).logits, atol=1e-6)

    invoke("export", str(run))  # without --merge: the adapters as they are, in RUN_DIR/export
    assert (run / "export" / "adapter_config.json").is_file()
