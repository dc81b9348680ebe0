"""Tests that need a real CUDA GPU (`pytest -m gpu`; `scripts/gpu-check.sh` runs them).

Skipped without CUDA (tests/conftest.py), always collected. None of them skips itself when CUDA is
present: where a card cannot do something (bf16 or flash-attn below sm80), the test checks that
tunelab refuses it or chooses the fallback, which is the behaviour that card must get. The
optional CUDA packages (bitsandbytes, liger-kernel, flash-attn on sm80+) are installed by
`scripts/gpu-check.sh`; a missing one fails the test that needs it.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rel_support import assert_same_run, history, make_project, write_rows

pytestmark = pytest.mark.gpu

ROOT = Path(__file__).resolve().parents[1]


def _capability() -> tuple[int, int]:
    import torch

    return torch.cuda.get_device_capability(0)


def _ampere() -> bool:
    return _capability() >= (8, 0)


def _cli(*args: str, env: dict[str, str] | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    full = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "TUNELAB_FAULT": "",
        "TOKENIZERS_PARALLELISM": "false",
        "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES", "0"),
        **(env or {}),
    }
    cmd = [sys.executable, "-m", "tunelab.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full)


def _flat(res: subprocess.CompletedProcess) -> str:
    return " ".join((res.stdout + res.stderr).split())


def _model_dir(root: Path, model_type: str, head: str, num_labels: int | None = None, **size: Any) -> Path:
    """A random-init model big enough for GPU kernels (head_dim 32) with the tiny tokenizer."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    from tiny import make_tokenizer, tiny_config

    tok = make_tokenizer(chat_template=head == "causal")
    dims = {"hidden_size": 128, "intermediate_size": 256, "num_attention_heads": 4, "num_key_value_heads": 2}
    if model_type == "qwen3":
        dims["head_dim"] = 32
    cfg = tiny_config(model_type, tok, num_labels=num_labels, **{**dims, **size})
    cls = AutoModelForSequenceClassification if head == "classification" else AutoModelForCausalLM
    path = root / f"{model_type}-{head}"
    cls.from_config(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def _losses(run_dir: Path) -> list[float]:
    return [h["loss"] for h in history(run_dir) if "loss" in h]


def _learned(run_dir: Path) -> None:
    losses = _losses(run_dir)
    assert len(losses) >= 4 and all(l == l and l < 1e4 for l in losses), losses  # noqa: E741 (finite)
    k = max(1, len(losses) // 4)
    assert sum(losses[-k:]) / k < sum(losses[:k]) / k, f"loss did not go down: {losses}"


def _project(tmp_path: Path, **training: Any) -> Path:
    return make_project(tmp_path, **{"num_train_epochs": 4, "save_strategy": "no", "eval_strategy": "no", **training})


# ------------------------------------------------------------------------------------- the plan
def test_plan_matches_this_gpu():
    import torch

    from tunelab.config import validate_config
    from tunelab.runtime.plan import apply_global_settings, decide_plan, detect_capabilities

    caps = detect_capabilities("auto")
    major, minor = _capability()
    assert caps.device == "cuda" and caps.cuda_capability == (major, minor)
    assert caps.bf16_supported == (major >= 8)  # native only, never the emulated answer
    cfg = validate_config(
        {"task": {"type": "classification"}, "data": {"train_file": "x"}, "model": {"name_or_path": "m"}}
    )
    from transformers import AutoConfig

    plan = decide_plan(cfg, caps, model_config=AutoConfig.for_model("qwen3"))
    assert plan.precision == ("bf16" if major >= 8 else "fp16")
    assert plan.grad_scaler == (major < 8) and plan.weight_dtype == "float32"
    assert plan.tf32 == (major >= 8) and plan.dataloader_pin_memory
    flash = caps.flash_attn_available
    assert flash == (major >= 8 and _importable("flash_attn"))
    assert plan.attn_implementation == ("flash_attention_2" if flash else "sdpa"), plan.attn_reason
    apply_global_settings(plan)
    assert torch.backends.cuda.matmul.allow_tf32 == plan.tf32


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


# ---------------------------------------------------------------------------------- precision
def test_bf16_training_on_ampere_refused_below(tmp_path):
    cfg = _project(tmp_path)
    run = tmp_path / "run"
    res = _cli("train", str(cfg), "--run-dir", str(run), "--set", "runtime.precision=bf16")
    if not _ampere():
        assert res.returncode != 0 and "does not support bf16" in _flat(res)
        return
    assert res.returncode == 0, res.stderr[-4000:]
    plan = json.loads((run / "runtime_plan.json").read_text())
    assert plan["precision"] == "bf16" and plan["autocast_dtype"] == "bfloat16" and not plan["grad_scaler"]
    _learned(run)


def test_fp16_training_uses_a_grad_scaler_over_fp32_weights(tmp_path):
    cfg = make_project(tmp_path, num_train_epochs=4, eval_strategy="no", save_strategy="epoch")
    run = tmp_path / "run"
    res = _cli("train", str(cfg), "--run-dir", str(run), "--set", "runtime.precision=fp16")
    assert res.returncode == 0, res.stderr[-4000:]
    plan = json.loads((run / "runtime_plan.json").read_text())
    assert plan["grad_scaler"] and plan["weight_dtype"] == "float32"
    ckpt = sorted((run / "checkpoints").glob("checkpoint-*"))[-1]
    assert (ckpt / "scaler.pt").is_file()  # the Trainer really ran a GradScaler
    _learned(run)


def test_full_finetune_with_fp16_weights_is_refused_on_the_gpu(tmp_path):
    cfg = _project(tmp_path)
    res = _cli(
        "train",
        str(cfg),
        "--run-dir",
        str(tmp_path / "run"),
        "--set",
        "runtime.precision=fp16",
        "--set",
        "model.dtype=float16",
    )
    assert res.returncode != 0
    assert "the fp16 GradScaler needs fp32 master weights" in _flat(res)
    assert "Traceback" not in res.stderr


# ------------------------------------------------------------------------------------- QLoRA
def test_qlora_classification(tmp_path):
    model = _model_dir(tmp_path, "qwen3", "classification", num_labels=3)
    cfg = _project(tmp_path, learning_rate=5e-3)
    raw = json.loads(cfg.read_text())
    raw["model"] = {
        "name_or_path": str(model),
        "lora": {"enabled": True, "r": 8},
        "quantization": {"load_in_4bit": True},
    }
    cfg.write_text(json.dumps(raw))
    run = tmp_path / "run"
    res = _cli("train", str(cfg), "--run-dir", str(run))
    assert res.returncode == 0, res.stderr[-4000:]
    plan = json.loads((run / "runtime_plan.json").read_text())
    assert plan["qlora_compute_dtype"] == ("bfloat16" if _ampere() else "float16")
    assert (run / "model" / "adapter_config.json").is_file()
    _learned(run)


def test_qlora_summarization(tmp_path):
    from gen_support import dialogue_frame

    model = _model_dir(tmp_path, "qwen3", "causal")
    dialogue_frame(32).to_csv(tmp_path / "dialogue.csv", index=False)
    cfg = {
        "name": "qlora-sum",
        "output_dir": str(tmp_path / "runs"),
        "task": {"type": "summarization", "input_column": "dialogue", "target_column": "summary", "id_column": "id"},
        "data": {"train_file": str(tmp_path / "dialogue.csv"), "max_length": 96, "cache_dir": str(tmp_path / "cache")},
        "model": {"name_or_path": str(model), "lora": {"enabled": True, "r": 8}, "quantization": {"load_in_4bit": True}},
        "training": {"num_train_epochs": 4, "per_device_train_batch_size": 8, "learning_rate": 5e-3, "logging_steps": 1,
                     "eval_strategy": "no", "save_strategy": "no", "warmup_steps": 0},
        "inference": {"batch_size": 8, "generation": {"max_new_tokens": 8}},
        "tracking": "none",
        "doctor": {"enabled": False},
    }  # fmt: skip
    path = tmp_path / "sum.yaml"
    path.write_text(json.dumps(cfg))
    run = tmp_path / "run"
    res = _cli("train", str(path), "--run-dir", str(run))
    assert res.returncode == 0, res.stderr[-4000:]
    assert (run / "model" / "adapter_config.json").is_file()
    _learned(run)


# ---------------------------------------------------------------------------------- kernels
def test_packed_flash_varlen_matches_padded_on_ampere_refused_below(tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification

    from tiny import make_tokenizer
    from tunelab.config import validate_config
    from tunelab.data.batching import make_collator
    from tunelab.errors import DeviceError
    from tunelab.models.pooling import enable_mask_pooling
    from tunelab.runtime.plan import decide_plan

    path = _model_dir(tmp_path, "qwen3", "classification", num_labels=5)
    flash_cfg = validate_config(
        {"task": {"type": "classification"}, "data": {"train_file": "x"},
         "model": {"name_or_path": str(path), "attn_implementation": "flash_attention_2"}}
    )  # fmt: skip
    if not _ampere():
        with pytest.raises(DeviceError, match="flash-attn"):
            decide_plan(flash_cfg)
        return
    assert decide_plan(flash_cfg).varlen_attention
    tok = make_tokenizer()
    g = torch.Generator().manual_seed(0)
    rows = [
        {"input_ids": torch.randint(7, len(tok), (int(n),), generator=g).tolist(), "labels": i % 5}
        for i, n in enumerate(torch.randint(5, 60, (12,), generator=g))
    ]

    def loss(attn: str, strategy: str) -> float:
        model = AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.bfloat16, attn_implementation=attn)
        model = enable_mask_pooling(model).cuda().eval()
        collate = make_collator(strategy, tok, "classification", 64, varlen_attention=attn == "flash_attention_2")
        batch = {k: v.cuda() if hasattr(v, "cuda") else v for k, v in collate(rows).items()}
        with torch.no_grad():
            return float(model(**batch).loss)

    packed, padded = loss("flash_attention_2", "packed"), loss("sdpa", "dynamic")
    assert abs(packed - padded) < 2e-2 * max(1.0, abs(padded)), (packed, padded)


def test_liger_kernels_on_a_decoder_match_the_plain_model(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.integrations.liger import apply_liger_kernel  # what the Trainer calls

    path = _model_dir(tmp_path, "qwen3", "causal")
    torch.manual_seed(0)
    ids = torch.randint(7, 500, (4, 48), device="cuda")
    plain = AutoModelForCausalLM.from_pretrained(path).cuda()
    out_plain = plain(input_ids=ids, labels=ids)  # before any patching
    liger = AutoModelForCausalLM.from_pretrained(path).cuda()
    apply_liger_kernel(liger, {})
    patched = [
        m
        for m in liger.modules()
        if "Liger" in type(m).__name__ or "Liger" in getattr(getattr(m, "forward", None), "__qualname__", "")
    ]
    assert patched, "no module was patched with a Liger kernel"
    out_liger = liger(input_ids=ids, labels=ids)
    assert torch.allclose(out_liger.loss, out_plain.loss, rtol=1e-3, atol=1e-3), (out_liger.loss, out_plain.loss)
    out_liger.loss.backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in liger.parameters())

    # And through the product: runtime.liger_kernels reaches the Trainer on a decoder SFT run.
    from gen_support import sft_frame

    sft_frame(32).to_csv(tmp_path / "sft.csv", index=False)
    cfg = {
        "name": "liger", "output_dir": str(tmp_path / "runs"),
        "task": {"type": "sft", "instruction_column": "instruction", "response_column": "response"},
        "data": {"train_file": str(tmp_path / "sft.csv"), "max_length": 64, "cache_dir": str(tmp_path / "cache")},
        "model": {"name_or_path": str(path)},
        "runtime": {"liger_kernels": True},
        "training": {"num_train_epochs": 3, "per_device_train_batch_size": 8, "learning_rate": 3e-3,
                     "logging_steps": 1, "eval_strategy": "no", "save_strategy": "no", "warmup_steps": 0},
        "inference": {"batch_size": 8, "generation": {"max_new_tokens": 4}},
        "tracking": "none", "doctor": {"enabled": False},
    }  # fmt: skip
    (tmp_path / "sft.yaml").write_text(json.dumps(cfg))
    res = _cli("train", str(tmp_path / "sft.yaml"), "--run-dir", str(tmp_path / "run"))
    assert res.returncode == 0, res.stderr[-4000:]
    assert json.loads((tmp_path / "run" / "runtime_plan.json").read_text())["liger_kernels"]
    _learned(tmp_path / "run")


# --------------------------------------------------------------------------------- reliability
def _step_peak(model: Any, batch: int, length: int) -> int:
    """Peak CUDA bytes of one fp32 AdamW training step at `batch` x `length` tokens."""
    import torch

    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    model.zero_grad(set_to_none=True)
    ids = torch.randint(7, 500, (batch, length), device="cuda")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model(input_ids=ids, labels=torch.zeros(batch, dtype=torch.long, device="cuda")).loss.backward()
    opt.step()
    peak = torch.cuda.max_memory_allocated()
    del opt, ids
    model.zero_grad(set_to_none=True)
    torch.cuda.empty_cache()
    return peak


def test_real_cuda_oom_is_recovered_with_the_same_effective_batch(tmp_path, caplog, capsys):
    """A real allocator OOM: the process may use only enough memory for a micro-batch of ~2."""
    import gc

    import torch
    from transformers import AutoModelForSequenceClassification

    from tunelab.config import load_config
    from tunelab.pipeline.train import train_from_config

    gc.collect()  # whatever earlier tests left on the device must not count against the limit
    torch.cuda.empty_cache()
    length = 512
    model_dir = _model_dir(tmp_path, "qwen3", "classification", num_labels=3, hidden_size=256, intermediate_size=1024,
                           num_hidden_layers=4, head_dim=64, max_position_embeddings=1024)  # fmt: skip
    probe = AutoModelForSequenceClassification.from_pretrained(model_dir, attn_implementation="eager").cuda()
    p1, p8 = _step_peak(probe, 1, length), _step_peak(probe, 8, length)
    del probe
    torch.cuda.empty_cache()
    assert p8 > p1 * 1.5, (p1, p8)  # activations dominate, so the micro-batch decides
    # Micro-batch 2 needs ~p1 + 1/7 of the difference, 4 needs ~3/7, 8 all of it.
    limit = p1 + 0.3 * (p8 - p1) + 64 * 2**20
    total = torch.cuda.get_device_properties(0).total_memory
    write_rows(tmp_path / "train.csv", 64)
    lines = (tmp_path / "train.csv").read_text().splitlines()
    long = [lines[0]] + [f"{ln.rsplit(',', 1)[0]} {'word ' * 400},{ln.rsplit(',', 1)[1]}" for ln in lines[1:]]
    (tmp_path / "train.csv").write_text("\n".join(long) + "\n")
    raw = {
        "name": "oom", "output_dir": str(tmp_path / "runs"), "task": {"type": "classification"},
        "data": {"train_file": str(tmp_path / "train.csv"), "max_length": length, "batching": "max_length",
                 "cache_dir": str(tmp_path / "cache")},
        "model": {"name_or_path": str(model_dir), "attn_implementation": "eager"},
        "runtime": {"precision": "fp32"},
        "training": {"per_device_train_batch_size": 8, "gradient_accumulation_steps": 1, "max_steps": 4,
                     "per_device_eval_batch_size": 2, "eval_strategy": "no", "save_strategy": "no", "logging_steps": 1,
                     "load_best_model_at_end": False},
        "inference": {"batch_size": 2},
        "tracking": "none", "doctor": {"enabled": False},
    }  # fmt: skip
    (tmp_path / "oom.yaml").write_text(json.dumps(raw))
    torch.cuda.set_per_process_memory_fraction(min(1.0, limit / total), 0)
    try:
        with caplog.at_level(logging.WARNING, logger="tunelab.training.oom"):
            run = train_from_config(load_config(tmp_path / "oom.yaml"))
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, 0)
    captured = capsys.readouterr()
    out = " ".join((caplog.text + captured.out + captured.err).split())
    assert "out of memory at micro-batch 8" in out and "effective batch 8 unchanged" in out, out[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert "train_loss" in metrics["train"]
    steps = [h["step"] for h in history(run) if "loss" in h]
    assert steps and max(steps) == 4  # the same optimizer steps as configured: 4 x 8 samples


def test_resume_after_sigkill_on_gpu(tmp_path):
    cfg = make_project(tmp_path, num_train_epochs=2)  # checkpoints every 3 steps, 12 steps
    base, run = tmp_path / "runs" / "base", tmp_path / "runs" / "killed"
    fp32 = ("--set", "runtime.precision=fp32")  # bit-identity is not expected under autocast
    res = _cli("train", str(cfg), "--run-dir", str(base), *fp32)
    assert res.returncode == 0, res.stderr[-4000:]
    res = _cli("train", str(cfg), "--run-dir", str(run), *fp32, env={"TUNELAB_FAULT": "sigkill@step:8"})
    assert res.returncode == -9, res.stderr[-3000:]
    assert not (run / "model").exists()
    res = _cli("train", str(cfg), "--run-dir", str(run), "--resume", *fp32)
    assert res.returncode == 0, res.stderr[-4000:]
    assert "from checkpoint-6" in _flat(res)
    try:
        assert_same_run(base, run)  # deterministic kernels on this GPU: bit-identical
    except AssertionError:
        # Non-deterministic CUDA kernels (atomics in backward) may differ in the last bits:
        # the same steps, and weights equal to float tolerance.
        from rel_support import weights

        wa, wb = weights(base / "model" / "model.safetensors"), weights(run / "model" / "model.safetensors")
        assert wa.keys() == wb.keys()
        for k in wa:
            assert (wa[k] - wb[k]).abs().max().item() < 1e-4, k
        assert [h["step"] for h in history(base)] == [h["step"] for h in history(run)]


# ----------------------------------------------------------------------------------- the bench
def test_bench_on_the_gpu_reports_mfu_and_memory(tmp_path):
    from tunelab.bench.gpu_check import run_gpu_check

    rows = run_gpu_check(tmp_path / "out", dry_run=True, device="cuda")
    assert rows and all(r["device"] == "cuda" for r in rows)
    for r in rows:
        assert r["samples_per_s"] > 0 and r["tokens_per_s"] > 0 and r["peak_memory_mb"] > 0
        assert 0 < r["mfu"] < 1, r
