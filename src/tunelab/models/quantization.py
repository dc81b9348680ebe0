"""QLoRA / 8-bit loading and the GPU-only optimizers.

bitsandbytes quantizes on CUDA only. The runtime plan already refuses `model.quantization` on a
machine without CUDA (DeviceError, runtime/plan.py); here we build the `BitsAndBytesConfig`
(4-bit NF4 + double quantization, compute dtype from `plan.qlora_compute_dtype`, so bf16
weights never meet an fp16 GradScaler) and refuse 8-bit/paged optimizers off-GPU, because
bitsandbytes' CPU fallback runs them silently slow or not at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tunelab.errors import DeviceError

if TYPE_CHECKING:
    from tunelab.config.schema import Config
    from tunelab.runtime.plan import RuntimePlan


def is_quantized(cfg: Config) -> bool:
    return cfg.model.quantization.load_in_4bit or cfg.model.quantization.load_in_8bit


def _require_bitsandbytes(what: str) -> None:
    import importlib.util

    if importlib.util.find_spec("bitsandbytes") is None:
        raise DeviceError(
            f"{what} needs the bitsandbytes package", hint="pip install bitsandbytes (CUDA machines only)"
        )


def quantization_kwargs(cfg: Config, plan: RuntimePlan) -> dict[str, Any]:
    """`from_pretrained` kwargs for the configured quantization ({} when off)."""
    quant = cfg.model.quantization
    if not is_quantized(cfg):
        return {}
    if plan.device != "cuda":  # the plan refuses this first; kept so no path can skip it
        raise DeviceError(
            "model.quantization (4-bit/8-bit) needs a CUDA GPU with bitsandbytes; this machine has none",
            hint="turn quantization off (LoRA alone works on CPU) or run on a GPU machine",
        )
    _require_bitsandbytes("model.quantization")
    import torch
    from transformers import BitsAndBytesConfig

    if quant.load_in_8bit:
        return {"quantization_config": BitsAndBytesConfig(load_in_8bit=True)}
    compute = getattr(torch, plan.qlora_compute_dtype or "float16")
    bnb = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=quant.quant_type,
        bnb_4bit_use_double_quant=quant.double_quant,
        bnb_4bit_compute_dtype=compute,
        # Non-quantized parts (norms, embeddings, head) in the same dtype as the compute.
        bnb_4bit_quant_storage=compute,
    )
    return {"quantization_config": bnb}


def check_optimizer(cfg: Config, plan: RuntimePlan) -> None:
    """Refuse bitsandbytes optimizers (`paged_adamw_8bit`, `adamw_bnb_8bit`, ...) without CUDA.

    decide_plan refuses them first for every task; this guards a plan made elsewhere.
    """
    from tunelab.runtime.plan import GPU_ONLY_OPTIM_MARKERS

    optim = cfg.training.optim
    if not any(m in optim for m in GPU_ONLY_OPTIM_MARKERS):
        return
    if plan.device != "cuda":
        raise DeviceError(
            f"training.optim={optim} is a bitsandbytes 8-bit/paged optimizer and needs a CUDA GPU; this machine has none",
            hint="use optim: adamw_torch on CPU",
        )
    _require_bitsandbytes(f"training.optim={optim}")


def prepare_quantized(model: Any, cfg: Config, plan: RuntimePlan) -> Any:
    """peft's `prepare_model_for_kbit_training` for a quantized model (no-op otherwise).

    It freezes the base, casts norms to fp32 for stability and, with gradient checkpointing,
    makes the inputs require grad so the adapters get gradients.
    """
    if not is_quantized(cfg):
        return model
    from peft import prepare_model_for_kbit_training

    return prepare_model_for_kbit_training(
        model,
        use_gradient_checkpointing=plan.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False},
    )
