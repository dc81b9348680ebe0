"""The runtime plan against real GPUs' capability tables, through `detect_capabilities`.

torch.cuda is mocked the way each card really answers: name, compute capability and memory from
`get_device_properties`, and `is_bf16_supported()` True on T4/V100 too (emulated: torch makes a
bf16 tensor there) but False with `including_emulation=False`. A plan that trusted the plain call
would pick bf16 on pre-Ampere cards.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from transformers import AutoConfig

from tunelab.config import validate_config
from tunelab.errors import DeviceError
from tunelab.runtime import plan as plan_mod
from tunelab.runtime.plan import decide_plan, detect_capabilities, plan_for_model


@dataclass(frozen=True)
class Card:
    name: str
    major: int
    minor: int
    total_memory: int


T4 = Card("Tesla T4", 7, 5, 15_828_320_256)
V100 = Card("Tesla V100-SXM2-16GB", 7, 0, 16_935_682_048)
A100 = Card("NVIDIA A100-SXM4-80GB", 8, 0, 85_097_971_712)
L4 = Card("NVIDIA L4", 8, 9, 23_580_639_232)
H100 = Card("NVIDIA H100 80GB HBM3", 9, 0, 85_044_716_544)
H200 = Card("NVIDIA H200", 9, 0, 150_110_011_392)
PRE_AMPERE = [T4, V100]
AMPERE_PLUS = [A100, L4, H100, H200]


class _Props:
    def __init__(self, card: Card):
        self.name, self.major, self.minor, self.total_memory = card.name, card.major, card.minor, card.total_memory
        self.multi_processor_count = 80


def on_card(monkeypatch, card: Card, packages: tuple[str, ...] = ()) -> None:
    """torch.cuda answers like `card` does; `packages` are the importable optional kernels."""

    def is_bf16_supported(including_emulation: bool = True) -> bool:
        # torch: native from sm80; below that, True only when emulation counts (a bf16 tensor can be made).
        return card.major >= 8 or including_emulation

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda _idx=0: _Props(card))
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda _idx=0: (card.major, card.minor))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    monkeypatch.setattr(plan_mod, "_importable", lambda name: name in packages)
    monkeypatch.setenv("WORLD_SIZE", "1")


def cfg(model_type: str = "qwen3", **sections):
    raw = {"task": {"type": "classification"}, "data": {"train_file": "x"}, "model": {"name_or_path": "m"}}
    for k, v in sections.items():
        raw[k] = {**raw.get(k, {}), **v}
    return validate_config(raw)


QWEN3 = AutoConfig.for_model("qwen3")
DEBERTA = AutoConfig.for_model("deberta-v2")


def plan_on(monkeypatch, card, c=None, packages=("flash_attn", "liger_kernel", "bitsandbytes"), model=QWEN3):
    on_card(monkeypatch, card, packages)
    caps = detect_capabilities("auto")
    return caps, decide_plan(c or cfg(), caps, model_config=model)


def test_mock_reports_emulated_bf16_like_torch_does(monkeypatch):
    # The trap this file guards against: the plain call says yes on a T4.
    on_card(monkeypatch, T4)
    assert torch.cuda.is_bf16_supported() is True
    assert torch.cuda.is_bf16_supported(including_emulation=False) is False


@pytest.mark.parametrize("card", PRE_AMPERE, ids=lambda c: c.name)
def test_pre_ampere_gets_fp16_autocast_with_scaler_over_fp32_weights(monkeypatch, card):
    caps, plan = plan_on(monkeypatch, card)
    assert caps.cuda_capability == (card.major, card.minor) and not caps.bf16_supported
    assert plan.precision == "fp16" and plan.autocast_dtype == "float16" and plan.grad_scaler
    assert plan.weight_dtype == "float32"
    assert not plan.tf32
    # flash-attn 2 has no kernels below sm80, installed or not.
    assert plan.attn_implementation == "sdpa" and not plan.varlen_attention
    assert "sm80" in plan.attn_reason


@pytest.mark.parametrize("card", PRE_AMPERE, ids=lambda c: c.name)
def test_pre_ampere_refuses_bf16_request(monkeypatch, card):
    on_card(monkeypatch, card)
    with pytest.raises(DeviceError, match="does not support bf16"):
        decide_plan(cfg(runtime={"precision": "bf16"}), detect_capabilities(), model_config=QWEN3)


@pytest.mark.parametrize("card", PRE_AMPERE, ids=lambda c: c.name)
def test_pre_ampere_lora_keeps_fp32_weights_and_qlora_computes_fp16(monkeypatch, card):
    lora = {"name_or_path": "m", "lora": {"enabled": True}}
    _, plan = plan_on(monkeypatch, card, cfg(model=lora))
    assert plan.weight_dtype == "float32" and plan.grad_scaler
    q = {**lora, "quantization": {"load_in_4bit": True}}
    _, qplan = plan_on(monkeypatch, card, cfg(model=q))
    assert qplan.qlora_compute_dtype == "float16"


@pytest.mark.parametrize("card", AMPERE_PLUS, ids=lambda c: c.name)
def test_ampere_plus_gets_native_bf16_tf32_and_flash(monkeypatch, card):
    caps, plan = plan_on(monkeypatch, card)
    assert caps.bf16_supported and caps.device_memory_bytes == card.total_memory
    assert plan.precision == "bf16" and plan.autocast_dtype == "bfloat16"
    assert not plan.grad_scaler  # bf16 never meets a GradScaler
    assert plan.weight_dtype == "float32"  # full fine-tune: fp32 master weights
    assert plan.tf32
    assert plan.attn_implementation == "flash_attention_2" and plan.varlen_attention
    assert "Qwen3Model supports it" in plan.attn_reason
    assert plan.dataloader_pin_memory and plan.dataloader_num_workers >= 1


@pytest.mark.parametrize("card", AMPERE_PLUS, ids=lambda c: c.name)
def test_flash_only_where_the_model_class_supports_it(monkeypatch, card):
    _, plan = plan_on(monkeypatch, card, model=DEBERTA)
    assert plan.attn_implementation == "sdpa" and not plan.varlen_attention
    assert "DebertaV2Model does not declare flash-attn support" in plan.attn_reason
    assert plan.to_dict()["attn_reason"] == plan.attn_reason  # stored in runtime_plan.json


def test_flash_not_installed_means_sdpa_with_reason(monkeypatch):
    _, plan = plan_on(monkeypatch, H200, packages=())
    assert plan.attn_implementation == "sdpa" and "not installed" in plan.attn_reason
    on_card(monkeypatch, H200, packages=())
    with pytest.raises(DeviceError, match="flash-attn is not installed"):
        decide_plan(cfg(model={"name_or_path": "m", "attn_implementation": "flash_attention_2"}), detect_capabilities())


def test_fp32_precision_on_ampere_uses_sdpa_not_flash(monkeypatch):
    _, plan = plan_on(monkeypatch, A100, cfg(runtime={"precision": "fp32"}))
    assert plan.attn_implementation == "sdpa" and "needs bf16/fp16" in plan.attn_reason
    assert plan.tf32 and plan.autocast_dtype is None


def test_tf32_can_be_turned_off(monkeypatch):
    _, plan = plan_on(monkeypatch, H100, cfg(runtime={"tf32": False}))
    assert not plan.tf32


@pytest.mark.parametrize("card", [T4, A100], ids=lambda c: c.name)
def test_full_finetune_with_fp16_weights_under_fp16_scaler_is_refused(monkeypatch, card):
    on_card(monkeypatch, card)
    bad = cfg(model={"name_or_path": "m", "dtype": "float16"}, runtime={"precision": "fp16"})
    with pytest.raises(DeviceError, match="GradScaler needs fp32 master weights") as err:
        decide_plan(bad, detect_capabilities(), model_config=QWEN3)
    assert "\n" not in err.value.message  # one line
    # The same weights frozen under LoRA are fine: the trainable adapters are fp32.
    ok = cfg(model={"name_or_path": "m", "dtype": "float16", "lora": {"enabled": True}}, runtime={"precision": "fp16"})
    assert decide_plan(ok, detect_capabilities(), model_config=QWEN3).grad_scaler


def test_bf16_weights_never_meet_a_grad_scaler(monkeypatch):
    on_card(monkeypatch, A100)
    with pytest.raises(DeviceError, match="GradScaler"):
        decide_plan(
            cfg(model={"name_or_path": "m", "dtype": "bfloat16"}, runtime={"precision": "fp16"}),
            detect_capabilities(),
            model_config=QWEN3,
        )
    for card in AMPERE_PLUS + PRE_AMPERE:
        _, plan = plan_on(monkeypatch, card, cfg(model={"name_or_path": "m", "lora": {"enabled": True}}))
        assert not (plan.weight_dtype == "bfloat16" and plan.grad_scaler), card.name


def test_workers_scale_with_cores_and_processes(monkeypatch):
    _, one = plan_on(monkeypatch, H200)
    monkeypatch.setenv("WORLD_SIZE", "8")
    eight = decide_plan(cfg(), detect_capabilities(), model_config=QWEN3)
    assert 1 <= eight.dataloader_num_workers <= one.dataloader_num_workers <= 4


def test_compile_off_by_default_with_a_reason(monkeypatch):
    _, plan = plan_on(monkeypatch, H100)
    assert not plan.torch_compile and "off (default)" in plan.compile_reason
    _, on = plan_on(monkeypatch, H100, cfg(training={"torch_compile": True}))
    assert on.torch_compile


def test_plan_follows_a_load_time_attention_fallback(monkeypatch):
    _, plan = plan_on(monkeypatch, H200)

    class _Model:
        config = QWEN3.__class__()

    _Model.config._attn_implementation = "sdpa"
    after = plan_for_model(plan, _Model())
    assert after.attn_implementation == "sdpa" and not after.varlen_attention
    assert "fell back" in after.attn_reason


def test_load_falls_back_once_to_sdpa_when_flash_cannot_load(tmp_path, capsys):
    # Real failure, no mock: flash-attn is not installed on this machine, so transformers refuses
    # attn_implementation=flash_attention_2 at load time; the load must go on with SDPA and say so.
    from dataclasses import replace

    from transformers import AutoModelForSequenceClassification

    from tiny import tiny_model_dir
    from tunelab.models.loading import load_model
    from tunelab.models.tokenizer import load_tokenizer

    path = tiny_model_dir(tmp_path, "qwen3", head="classification", num_labels=3)
    c = cfg(model={"name_or_path": str(path)})
    flash_plan = replace(decide_plan(c), attn_implementation="flash_attention_2", varlen_attention=True)
    model = load_model(c, flash_plan, load_tokenizer(c), AutoModelForSequenceClassification, num_labels=3)
    assert model.config._attn_implementation == "sdpa"
    err = capsys.readouterr().err
    assert "cannot load with attn_implementation=flash_attention_2" in err and "falling back to sdpa" in err
    assert not plan_for_model(flash_plan, model).varlen_attention
