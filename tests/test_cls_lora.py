"""Decoder classifiers with LoRA (peft SEQ_CLS): the head trains in full and is saved with the
adapters, predict/evaluate reload to the same predictions, export --merge gives a plain
transformers classifier with equal logits, and packed == padded with LoRA on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from learn_support import ACCURACY_BAR, MAJORITY, learnable_config, losses, write_yaml
from tiny import tiny_model_dir
from tunelab.cli import app

torch = pytest.importorskip("torch")
LORA = {"enabled": True, "r": 8, "alpha": 16, "dropout": 0.0}


def _train(root: Path, **sections) -> Path:
    model = tiny_model_dir(root, "qwen3", head="causal")
    cfg_path = write_yaml(root / "config.yaml", learnable_config(root, model, **sections))
    result = CliRunner().invoke(app, ["train", str(cfg_path)])
    assert result.exit_code == 0, result.output
    (run_dir,) = (root / "runs").iterdir()
    return run_dir


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory) -> Path:
    return _train(tmp_path_factory.mktemp("lora"), model={"lora": LORA})


def _learned(run_dir: Path) -> float:
    acc = json.loads((run_dir / "metrics.json").read_text())["validation"]["accuracy"]
    first, last = losses(run_dir)[:3], losses(run_dir)[-3:]
    # The loss falls clearly: from about ln(8) = 2.08 to under a third of it.
    assert sum(last) / 3 < 0.3 * sum(first) / 3, (first, last)
    return acc


def test_decoder_lora_learns_and_saves_adapters_plus_head(lora_run):
    assert _learned(lora_run) >= ACCURACY_BAR > MAJORITY
    files = {p.name for p in (lora_run / "model").iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "labels.json"} <= files
    assert "model.safetensors" not in files  # adapters only, not a full copy of the base
    from safetensors import safe_open

    with safe_open(str(lora_run / "model" / "adapter_model.safetensors"), "pt") as f:
        heads = [k for k in f.keys() if "lora_" not in k]  # noqa: SIM118 (safe_open is not iterable)
    assert heads == ["base_model.model.score.weight"]  # the trained head travels with the adapters
    adapter_cfg = json.loads((lora_run / "model" / "adapter_config.json").read_text())
    assert adapter_cfg["task_type"] == "SEQ_CLS" and "score" in adapter_cfg["modules_to_save"]


def test_predict_and_evaluate_reload_to_the_training_predictions(lora_run, tmp_path):
    val_csv = Path(yaml.safe_load((lora_run / "config.yaml").read_text())["data"]["validation_file"])
    out = tmp_path / "pred.jsonl"
    runner = CliRunner()
    result = runner.invoke(app, ["predict", str(lora_run), "-i", str(val_csv), "-o", str(out)])
    assert result.exit_code == 0, result.output
    trained = pd.read_json(lora_run / "predictions" / "validation.jsonl", lines=True).set_index("id")
    reloaded = pd.read_json(out, lines=True).set_index("id").loc[trained.index]
    assert reloaded["prediction"].tolist() == trained["prediction"].tolist()
    assert (reloaded["probability"] - trained["probability"]).abs().max() < 1e-5
    result = runner.invoke(app, ["evaluate", str(lora_run), "-i", str(val_csv)])
    assert result.exit_code == 0, result.output
    (ev_dir,) = (lora_run / "evaluations").iterdir()
    scored = json.loads((ev_dir / "metrics.json").read_text())
    assert scored["accuracy"] == json.loads((lora_run / "metrics.json").read_text())["validation"]["accuracy"]


PLAIN_LOAD = """
import json, sys
sys.modules["tunelab"] = None  # transformers alone: no tunelab, no peft
sys.modules["peft"] = None
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
tok = AutoTokenizer.from_pretrained(sys.argv[1])
model = AutoModelForSequenceClassification.from_pretrained(sys.argv[1]).eval()
enc = tok(json.loads(sys.argv[2]), padding=True, return_tensors="pt")
with torch.no_grad():
    print(json.dumps({"logits": model(**enc).logits.tolist(), "labels": model.config.id2label}))
"""


def test_export_merge_is_a_plain_classifier_with_equal_logits(lora_run, tmp_path):
    from tunelab.runs import load_run
    from tunelab.runtime.plan import decide_plan
    from tunelab.tasks.base import task_from_config

    out = tmp_path / "merged"
    result = CliRunner().invoke(app, ["export", str(lora_run), "--merge", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert not (out / "adapter_config.json").exists() and (out / "model.safetensors").is_file()
    texts = ["the quick fox", "where is my parcel", "please reset my lazy password", "spam"]
    proc = subprocess.run(
        [sys.executable, "-c", PLAIN_LOAD, str(out), json.dumps(texts)], capture_output=True, text=True, check=True
    )
    plain = json.loads(proc.stdout.strip().splitlines()[-1])
    run = load_run(lora_run)
    cfg, task = run.config, task_from_config(run.config, run.label_names)
    plan = decide_plan(cfg.model_copy(update={"runtime": cfg.runtime.model_copy(update={"precision": "fp32"})}))
    tok, model = task.load_trained(cfg, plan, lora_run / "model")
    enc = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        adapter_logits = model.eval()(**enc).logits
    torch.testing.assert_close(torch.tensor(plain["logits"]), adapter_logits, atol=1e-4, rtol=0)
    assert sorted(plain["labels"].values()) == sorted(task.label_names)


def test_decoder_lora_packed_learns(tmp_path):
    run_dir = _train(tmp_path, model={"lora": LORA}, data={"batching": "packed"})
    assert _learned(run_dir) >= ACCURACY_BAR


def test_encoder_full_fine_tune_learns(tmp_path):
    model = tiny_model_dir(tmp_path, "bert", head="base")
    cfg = learnable_config(tmp_path, model, training={"num_train_epochs": 14})  # attends from [CLS]: slower
    # (at 10 epochs it reached 0.89-0.92 depending on thread count: too close to the bar)
    result = CliRunner().invoke(app, ["train", str(write_yaml(tmp_path / "c.yaml", cfg))])
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert _learned(run_dir) >= ACCURACY_BAR


# --------------------------------------------------------------------- model construction
def _lora_classifier(tmp_path, plan_updates=None, **model_section):
    import dataclasses

    from tunelab.config.loader import validate_config
    from tunelab.models.tokenizer import load_tokenizer
    from tunelab.runtime.plan import decide_plan
    from tunelab.tasks.base import task_from_config

    model_dir = tiny_model_dir(tmp_path, "qwen3", head="causal")
    raw = learnable_config(tmp_path, model_dir, model={"lora": LORA, **model_section})
    cfg = validate_config(raw)
    plan = dataclasses.replace(decide_plan(cfg), **(plan_updates or {}))
    tok = load_tokenizer(cfg)
    task = task_from_config(cfg, [f"c{i}" for i in range(8)])
    return cfg, plan, tok, task, task.build_model(cfg, plan, tok)


def test_trainable_count_includes_the_head_and_the_base_is_frozen(tmp_path):
    from tunelab.models.lora import count_parameters

    _, _, _, _, model = _lora_classifier(tmp_path)
    trainable = {n: p.numel() for n, p in model.named_parameters() if p.requires_grad}
    head = {n: c for n, c in trainable.items() if "score" in n}
    assert sum(head.values()) == 32 * 8  # hidden 32 x 8 labels, trained in full
    assert all("lora_" in n or "score" in n for n in trainable)
    assert count_parameters(model)[0] == sum(trainable.values())


def test_bf16_base_keeps_adapters_and_head_in_fp32(tmp_path):
    _, _, _, _, model = _lora_classifier(tmp_path, {"weight_dtype": "bfloat16"})
    dtypes = {p.dtype for p in model.parameters() if p.requires_grad}
    frozen = {p.dtype for p in model.parameters() if not p.requires_grad}
    assert dtypes == {torch.float32} and frozen == {torch.bfloat16}


def test_packed_and_padded_give_the_same_loss_with_lora(tmp_path):
    from tunelab.models.pooling import enable_mask_pooling

    _, _, _, _, model = _lora_classifier(tmp_path, {"autocast_dtype": None})
    with torch.no_grad():  # LoRA B starts at zero: make the adapters change the output
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    model.eval()
    assert enable_mask_pooling(model) is model  # idempotent on the wrapper
    g = torch.Generator().manual_seed(0)
    seqs = [torch.randint(10, 500, (n,), generator=g) for n in (5, 2, 9, 1)]
    labels = torch.tensor([3, 0, 7, 1])
    width = max(len(s) for s in seqs)
    ids = torch.zeros((len(seqs), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, s in enumerate(seqs):
        ids[i, : len(s)], mask[i, : len(s)] = s, 1
    with torch.no_grad():
        padded = model(input_ids=ids, attention_mask=mask, labels=labels)
        packed = model(
            input_ids=torch.cat(seqs).unsqueeze(0),
            position_ids=torch.cat([torch.arange(len(s)) for s in seqs]).unsqueeze(0),
            labels=labels,
        )
        base_only = model.get_base_model()
        with model.disable_adapter():
            no_lora = model(input_ids=ids, attention_mask=mask, labels=labels)
    assert base_only is not None and (padded.loss - no_lora.loss).abs() > 1e-3  # LoRA is in the path
    torch.testing.assert_close(packed.logits, padded.logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(packed.loss, padded.loss, atol=1e-5, rtol=0)


# --------------------------------------------------------------------- refusals, for every task
def _config_for(tmp_path, task_type: str, **model_section) -> Path:
    from gen_support import dialogue_frame, sft_frame

    head = "causal"
    model = tiny_model_dir(tmp_path, "qwen3", head=head)
    raw = learnable_config(tmp_path, model, model=model_section)
    if task_type != "classification":
        frame = dialogue_frame(16) if task_type == "summarization" else sft_frame(16)
        frame.to_csv(tmp_path / "gen.csv", index=False)
        raw["task"] = {"type": task_type}
        raw["data"] = {"train_file": str(tmp_path / "gen.csv"), "cache_dir": str(tmp_path / "cache")}
    return write_yaml(tmp_path / "c.yaml", raw)


def _refused(args: list[str]) -> str:
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0
    errors = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output  # one line + a hint
    return errors[0] + next(ln for ln in result.output.splitlines() if ln.startswith("hint:"))


@pytest.mark.parametrize("task_type", ["classification", "summarization", "sft"])
def test_quantization_without_lora_refused_at_validation(tmp_path, task_type):
    cfg = _config_for(tmp_path, task_type, quantization={"load_in_4bit": True})
    out = _refused(["validate", str(cfg)])
    assert "quantization needs LoRA" in out and "lora.enabled: true" in out


@pytest.mark.parametrize("task_type", ["classification", "summarization", "sft"])
def test_quantization_on_cpu_refused_before_anything_is_written(tmp_path, task_type):
    cfg = _config_for(tmp_path, task_type, lora=LORA, quantization={"load_in_4bit": True})
    out = _refused(["train", str(cfg)])
    assert "model.quantization (4-bit/8-bit) needs a CUDA GPU" in out
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("task_type", ["classification", "summarization", "sft"])
def test_lora_targets_the_model_lacks_refused_from_its_config(tmp_path, task_type):
    cfg = _config_for(tmp_path, task_type, lora={**LORA, "target_modules": ["q_proj", "query_key_value"]})
    for command in ("validate", "train"):
        out = _refused([command, str(cfg)])
        assert "model.lora.target_modules: ['query_key_value'] not found in qwen3" in out
    assert not (tmp_path / "runs").exists()


def test_classification_reads_model_placement(tmp_path):
    # model.device_map / max_memory were read by the generative tasks only: a classifier silently
    # ignored them. Now they reach placement (which refuses max_memory without a device_map).
    from tunelab.errors import DeviceError

    with pytest.raises(DeviceError, match="model.max_memory is set but model.device_map is not"):
        _lora_classifier(tmp_path, max_memory={"cpu": "1GiB"})


@pytest.mark.gpu
def test_qlora_classifier_trains_head_in_fp32_and_saves_it(tmp_path):
    """QLoRA (4-bit NF4 base, CUDA + bitsandbytes): k-bit prep, adapters and head train in fp32."""
    pytest.importorskip("bitsandbytes")
    cfg, plan, tok, task, model = _lora_classifier(tmp_path, quantization={"load_in_4bit": True})
    assert plan.device == "cuda" and getattr(model.get_base_model(), "is_loaded_in_4bit", False)
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert any("score" in n for n in trainable) and all(p.dtype == torch.float32 for p in trainable.values())
