"""LoRA (models/lora.py), QLoRA/8-bit refusal (models/quantization.py), export --merge (models/export.py)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from gen_support import dialogue_frame, make_config
from tiny import tiny_model_dir
from tunelab.errors import ConfigError, DeviceError


def _setup(tmp_path, model_type="llama", head="causal", lora=None, **sections):
    from tunelab.models.tokenizer import load_tokenizer
    from tunelab.runtime.plan import decide_plan
    from tunelab.tasks.base import task_from_config

    model_dir = tiny_model_dir(tmp_path, model_type, head=head)
    lora = {"enabled": True, "r": 4, "alpha": 8, "dropout": 0.0, **(lora or {})}
    cfg = make_config(
        tmp_path, model_dir, {"type": "summarization"}, tmp_path / "x.csv", model={"lora": lora}, **sections
    )
    plan = decide_plan(cfg)
    tok = load_tokenizer(cfg)
    task = task_from_config(cfg)
    return cfg, plan, tok, task


def _train(tmp_path, cfg, plan, tok, task, model):
    from datasets import Dataset

    frame = dialogue_frame(8)
    ds = Dataset.from_pandas(frame).map(
        lambda b: task.tokenize(b, tok), batched=True, remove_columns=list(frame.columns)
    )
    trainer = task.build_trainer(
        cfg=cfg, plan=plan, model=model, tokenizer=tok, train_dataset=ds, output_dir=tmp_path / "ck"
    )
    trainer.train()
    return trainer


@pytest.mark.parametrize("model_type,head", [("llama", "causal"), ("bart", "seq2seq")])
def test_lora_trains_adapters_and_leaves_the_base_frozen(tmp_path, model_type, head):
    cfg, plan, tok, task = _setup(tmp_path, model_type, head, training={"max_steps": 3, "learning_rate": 1e-2})
    model = task.build_model(cfg, plan, tok)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    _train(tmp_path, cfg, plan, tok, task, model)
    after = dict(model.named_parameters())
    changed = {n for n in before if not torch.equal(before[n], after[n].detach())}
    assert any("lora_B" in n for n in changed)  # lora_B starts at zero: training moved it
    assert changed <= trainable  # no base weight moved


def test_target_modules_auto_all_linear_and_explicit(tmp_path):
    from transformers import AutoModelForCausalLM

    from tunelab.config.schema import LoraConfig
    from tunelab.models.lora import resolve_target_modules

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir(tmp_path, "qwen3", head="causal"))
    auto = resolve_target_modules(LoraConfig(target_modules="auto"), model)
    assert set(auto) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert resolve_target_modules(LoraConfig(target_modules="all-linear"), model) == "all-linear"
    assert resolve_target_modules(LoraConfig(target_modules=["q_proj", "v_proj"]), model) == ["q_proj", "v_proj"]
    with pytest.raises(ConfigError, match="query"):
        resolve_target_modules(LoraConfig(target_modules=["query"]), model)


def test_saved_adapters_reload_to_identical_predictions_and_merge(tmp_path):
    from transformers import AutoModelForCausalLM

    from tunelab import runs
    from tunelab.models.export import export_run

    cfg, plan, tok, task = _setup(tmp_path, training={"max_steps": 4, "learning_rate": 2e-2})
    model = task.build_model(cfg, plan, tok)
    trainer = _train(tmp_path, cfg, plan, tok, task, model)
    frame = dialogue_frame(6, with_summary=False)
    before = task.predict(model, tok, frame, cfg, plan).columns["prediction"]

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    runs.write_run_files(run_dir, cfg)
    trainer.save_model(str(run_dir / runs.MODEL))
    tok.save_pretrained(str(run_dir / runs.MODEL))
    assert (run_dir / runs.MODEL / "adapter_config.json").is_file()
    assert not (run_dir / runs.MODEL / "model.safetensors").exists()  # adapters only

    tok2, reloaded = task.load_trained(cfg, plan, run_dir / runs.MODEL)
    assert task.predict(reloaded, tok2, frame, cfg, plan).columns["prediction"] == before

    merged_dir = export_run(run_dir, tmp_path / "merged", merge=True)
    assert (merged_dir / "model.safetensors").is_file() and not (merged_dir / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(merged_dir)  # plain transformers, no peft
    # Merging folds B@A into W: the same function up to float rounding, so compare logits, not greedy
    # text (a random tiny model has near-tied logits where a 1e-7 difference flips the argmax).
    batch = tok2(list(frame["dialogue"]), return_tensors="pt", padding=True)
    with torch.inference_mode():
        adapter_logits = reloaded(**batch, use_cache=False).logits
        merged_logits = merged(**batch, use_cache=False).logits
    torch.testing.assert_close(merged_logits, adapter_logits, atol=1e-4, rtol=1e-4)
    copied = export_run(run_dir, tmp_path / "copied", merge=False)
    assert (copied / "adapter_config.json").is_file()
    with pytest.raises(Exception, match="not empty"):
        export_run(run_dir, tmp_path / "copied", merge=False)


def test_quantization_on_cpu_fails_with_a_clear_message(tmp_path):
    from tunelab.runtime.plan import decide_plan

    model_dir = tiny_model_dir(tmp_path, "llama", head="causal")
    for quant in ({"load_in_4bit": True}, {"load_in_8bit": True}):
        cfg = make_config(
            tmp_path,
            model_dir,
            {"type": "summarization"},
            tmp_path / "x.csv",
            model={"quantization": quant, "lora": {"enabled": True}},
        )
        with pytest.raises(DeviceError, match="needs a CUDA GPU with bitsandbytes"):
            decide_plan(cfg)


def test_quantization_config_on_a_gpu_plan(tmp_path):
    """The BitsAndBytesConfig (NF4, double quant, compute dtype from the plan); needs bitsandbytes."""
    from tunelab.models.quantization import quantization_kwargs
    from tunelab.runtime.plan import decide_plan

    model_dir = tiny_model_dir(tmp_path, "llama", head="causal")
    cfg = make_config(
        tmp_path, model_dir, {"type": "summarization"}, tmp_path / "x.csv", model={"lora": {"enabled": True}}
    )
    cpu_plan = decide_plan(cfg)
    cfg.model.quantization.load_in_4bit = True
    gpu_plan = dataclasses.replace(cpu_plan, device="cuda", qlora_compute_dtype="bfloat16")
    with pytest.raises(DeviceError, match="CUDA GPU"):
        quantization_kwargs(cfg, cpu_plan)
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        with pytest.raises(DeviceError, match="bitsandbytes"):
            quantization_kwargs(cfg, gpu_plan)
        return
    bnb = quantization_kwargs(cfg, gpu_plan)["quantization_config"]
    assert bnb.load_in_4bit and bnb.bnb_4bit_quant_type == "nf4" and bnb.bnb_4bit_use_double_quant
    assert bnb.bnb_4bit_compute_dtype == torch.bfloat16


@pytest.mark.parametrize("optim", ["paged_adamw_8bit", "adamw_bnb_8bit", "paged_adamw_32bit"])
def test_8bit_and_paged_optimizers_refused_on_cpu(tmp_path, optim):
    from tunelab.runtime.plan import decide_plan

    cfg, plan, tok, task = _setup(tmp_path)  # a CPU plan, decided with adamw_torch
    cfg.training.optim = optim
    with pytest.raises(DeviceError, match=f"training.optim={optim}.*needs a CUDA GPU"):
        decide_plan(cfg)  # the plan refuses it for every task, before anything loads
    with pytest.raises(DeviceError, match=f"training.optim={optim}.*needs a CUDA GPU"):
        task.build_model(cfg, plan, tok)  # and so does the loader, for a plan made elsewhere


def test_quantized_without_lora_is_a_config_error(tmp_path):
    cfg, plan, tok, task = _setup(tmp_path, lora={"enabled": False})
    cfg.model.quantization.load_in_4bit = True
    with pytest.raises(ConfigError, match="lora.enabled"):
        task.build_model(cfg, plan, tok)


def test_gradient_checkpointing_with_lora_still_trains_adapters(tmp_path):
    cfg, plan, tok, task = _setup(
        tmp_path, training={"max_steps": 2, "learning_rate": 1e-2, "gradient_checkpointing": True}
    )
    assert plan.gradient_checkpointing
    model = task.build_model(cfg, plan, tok)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_B" in n}
    _train(tmp_path, cfg, plan, tok, task, model)
    assert any(not torch.equal(before[n], p.detach()) for n, p in model.named_parameters() if n in before)
