"""LoRA adapters through peft, configured from `model.lora`.

`target_modules: auto` resolves by the model family (`config.model_type`, models/families.py),
keeping only names the loaded model really has; a family we know nothing about falls back to
peft's "all-linear". Only the adapters train: the base stays frozen (peft does that), and the
count of trainable parameters is printed so a wrong target list is visible at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tunelab.errors import ConfigError

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from tunelab.config.schema import LoraConfig as LoraSettings


def _linear_leaf_names(model: Any) -> set[str]:
    import torch

    return {name.rsplit(".", 1)[-1] for name, mod in model.named_modules() if isinstance(mod, torch.nn.Linear)}


def resolve_target_modules(settings: LoraSettings, model: Any) -> list[str] | str:
    """The peft `target_modules` for this model: a list of leaf module names, or "all-linear"."""
    from tunelab.models.families import family_of

    present = _linear_leaf_names(model)
    wanted = settings.target_modules
    if wanted == "all-linear":
        return "all-linear"
    if wanted == "auto":
        family = family_of(model.config)
        found = [m for m in family.lora_target_modules if m in present]
        return found or "all-linear"
    missing = [m for m in wanted if m not in present]
    if missing:
        raise ConfigError(
            f"model.lora.target_modules: {missing} not found in {model.config.model_type} (linear layers: {sorted(present)[:12]})",
            hint="use target_modules: auto or all-linear, or names from that list",
        )
    return list(wanted)


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def apply_lora(model: PreTrainedModel, settings: LoraSettings, *, gradient_checkpointing: bool = False) -> Any:
    """Wrap `model` in a peft LoRA model; prints trainable/total parameters."""
    from peft import LoraConfig, TaskType, get_peft_model

    from tunelab import ui

    is_enc_dec = bool(getattr(model.config, "is_encoder_decoder", False))
    targets = resolve_target_modules(settings, model)
    peft_cfg = LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=targets,
        bias=settings.bias,
        task_type=TaskType.SEQ_2_SEQ_LM if is_enc_dec else TaskType.CAUSAL_LM,
    )
    if (
        gradient_checkpointing
        and not getattr(model, "is_loaded_in_4bit", False)
        and not getattr(model, "is_loaded_in_8bit", False)
    ):
        # With a frozen base, checkpointed blocks see inputs without requires_grad and would
        # back-propagate nothing into the adapters; this hook makes the embeddings' output require grad.
        model.enable_input_require_grads()
    peft_model = get_peft_model(model, peft_cfg)
    trainable, total = count_parameters(peft_model)
    ui.err().print(
        f"LoRA r={settings.r} alpha={settings.alpha} targets={targets}: trainable params {trainable:,} / {total:,} ({100 * trainable / max(total, 1):.3f}%)"
    )
    return peft_model


def is_peft_dir(path: Any) -> bool:
    """Does a saved model directory hold peft adapters (rather than a full model)?"""
    from pathlib import Path

    return (Path(path) / "adapter_config.json").is_file()
