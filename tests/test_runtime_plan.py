"""The one runtime plan: precision, GradScaler, TF32, attention, loaders per device."""

from __future__ import annotations

import pytest

from tunelab.config import validate_config
from tunelab.errors import DeviceError
from tunelab.runtime.plan import Capabilities, decide_plan


def cfg(**sections):
    raw = {"task": {"type": "classification"}, "data": {"train_file": "x"}, "model": {"name_or_path": "m"}}
    for k, v in sections.items():
        raw[k] = {**raw.get(k, {}), **v}
    return validate_config(raw)


CPU = Capabilities("cpu", "cpu", None, False, 8 << 30, 2)
CPU_BF16 = Capabilities("cpu", "cpu", None, True, 8 << 30, 2, ("avx512_bf16",))
A100 = Capabilities("cuda", "A100", (8, 0), True, 80 << 30, 16, flash_attn_available=True)
T4 = Capabilities("cuda", "T4", (7, 5), False, 16 << 30, 8)


def test_auto_precision_per_device():
    assert decide_plan(cfg(), CPU).precision == "fp32"
    assert decide_plan(cfg(), CPU_BF16).precision == "bf16"
    assert decide_plan(cfg(), A100).precision == "bf16"
    t4 = decide_plan(cfg(), T4)
    assert t4.precision == "fp16" and t4.grad_scaler and t4.weight_dtype == "float32"


def test_fp16_on_cpu_is_refused_not_silently_ignored():
    with pytest.raises(DeviceError, match="fp16 would silently run as fp32"):
        decide_plan(cfg(runtime={"precision": "fp16"}), CPU)


def test_bf16_without_support_is_refused():
    with pytest.raises(DeviceError, match="does not support bf16"):
        decide_plan(cfg(runtime={"precision": "bf16"}), T4)


def test_bf16_weights_never_meet_fp16_scaler():
    with pytest.raises(DeviceError, match="GradScaler"):
        decide_plan(cfg(model={"name_or_path": "m", "dtype": "bfloat16"}, runtime={"precision": "fp16"}), T4)


def test_grad_scaler_only_with_fp16():
    assert not decide_plan(cfg(), A100).grad_scaler
    assert decide_plan(cfg(), A100).autocast_dtype == "bfloat16"


def test_tf32_only_on_ampere_plus():
    assert decide_plan(cfg(), A100).tf32
    assert not decide_plan(cfg(), T4).tf32
    assert not decide_plan(cfg(), CPU).tf32


def test_attention_choice():
    from transformers import AutoConfig

    a100 = decide_plan(cfg(), A100, model_config=AutoConfig.for_model("qwen3"))
    assert a100.attn_implementation == "flash_attention_2" and a100.varlen_attention
    # A model whose config cannot be read gets SDPA (works everywhere), with the reason.
    unknown = decide_plan(cfg(), A100)
    assert unknown.attn_implementation == "sdpa" and "config unreadable" in unknown.attn_reason
    assert decide_plan(cfg(), CPU).attn_implementation == "sdpa"
    with pytest.raises(DeviceError, match="flash-attn"):
        decide_plan(cfg(model={"name_or_path": "m", "attn_implementation": "flash_attention_2"}), CPU)


def test_quantization_needs_cuda_and_sets_compute_dtype():
    q = {"name_or_path": "m", "quantization": {"load_in_4bit": True}, "lora": {"enabled": True}}
    with pytest.raises(DeviceError, match="needs a CUDA GPU"):
        decide_plan(cfg(model=q), CPU)
    assert decide_plan(cfg(model=q), A100).qlora_compute_dtype == "bfloat16"
    assert decide_plan(cfg(model=q), T4).qlora_compute_dtype == "float16"


def test_loader_settings_per_device():
    cpu = decide_plan(cfg(), CPU)
    assert cpu.dataloader_num_workers == 0 and not cpu.dataloader_pin_memory
    gpu = decide_plan(cfg(), A100)
    assert gpu.dataloader_num_workers >= 1 and gpu.dataloader_pin_memory and gpu.dataloader_persistent_workers


def test_plan_serializes():
    d = decide_plan(cfg(), CPU).to_dict()
    assert d["precision"] == "fp32" and d["capabilities"]["device"] == "cpu"


@pytest.mark.parametrize("task", ["classification", "summarization", "sft"])
def test_full_fine_tune_keeps_fp32_master_weights_bf16_only_when_adapters_train(task):
    lora = {"name_or_path": "m", "lora": {"enabled": True}}
    for caps in (A100, CPU_BF16, T4, CPU):
        full = decide_plan(cfg(task={"type": task}), caps)
        assert full.weight_dtype == "float32" and full.weight_dtype_reason.startswith("full fine-tune: fp32 master")
        if full.autocast_dtype:  # autocast on top where the device has it, and the plan says so
            assert f"{full.precision} autocast on top" in full.weight_dtype_reason
    adapters = decide_plan(cfg(task={"type": task}, model=lora), A100)
    assert adapters.weight_dtype == "bfloat16" and "only adapters and head train" in adapters.weight_dtype_reason
    assert decide_plan(cfg(task={"type": task}, model=lora), T4).weight_dtype == "float32"  # no native bf16
    assert "weight_dtype_reason" in adapters.to_dict()  # stored in runtime_plan.json
