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


def apply_lora(
    model: PreTrainedModel,
    settings: LoraSettings,
    *,
    gradient_checkpointing: bool = False,
    head: str | None = None,
) -> Any:
    """Wrap `model` in a peft LoRA model; prints trainable/total parameters.

    `head`: the attribute name of a freshly initialised task head (a classifier's `score` /
    `classifier`). It is trained in full and saved with the adapters (peft `modules_to_save`,
    task type SEQ_CLS); without it the head would stay frozen at its random init, or train and
    then be missing from the saved adapters.
    """
    from peft import LoraConfig, TaskType, get_peft_model

    from tunelab import ui

    is_enc_dec = bool(getattr(model.config, "is_encoder_decoder", False))
    targets = resolve_target_modules(settings, model)
    if head is not None:
        task_type = TaskType.SEQ_CLS
    else:
        task_type = TaskType.SEQ_2_SEQ_LM if is_enc_dec else TaskType.CAUSAL_LM
    peft_cfg = LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=targets,
        bias=settings.bias,
        task_type=task_type,
        modules_to_save=[head] if head is not None else None,
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
    upcast_trainable(peft_model)
    trainable, total = count_parameters(peft_model)
    head_note = ""
    if head is not None:
        head_params = sum(
            p.numel() for n, p in peft_model.named_parameters() if p.requires_grad and "modules_to_save" in n
        )
        head_note = f" (incl. head {head!r} trained in full: {head_params:,})"
    ui.err().print(
        f"LoRA r={settings.r} alpha={settings.alpha} targets={targets}: trainable params {trainable:,}{head_note}"
        f" / {total:,} ({100 * trainable / max(total, 1):.3f}%)"
    )
    return peft_model


def upcast_trainable(model: Any) -> None:
    """Keep every trainable tensor (adapters, the head copy) in fp32.

    With bf16 base weights (the plan's choice when only adapters train) peft keeps the LoRA
    matrices in fp32, but the `modules_to_save` copy of the head inherits the base's bf16: an
    optimizer stepping bf16 weights directly loses small updates. Autocast handles the mixed
    dtypes in the forward.
    """
    import torch

    for param in model.parameters():
        if param.requires_grad and param.is_floating_point() and param.dtype != torch.float32:
            param.data = param.data.float()


def is_peft_dir(path: Any) -> bool:
    """Does a saved model directory hold peft adapters (rather than a full model)?"""
    from pathlib import Path

    return (Path(path) / "adapter_config.json").is_file()


def check_targets_from_config(cfg: Any) -> None:
    """Refuse explicit `model.lora.target_modules` the model lacks, from its config alone.

    Runs before any data or weights are loaded (train start, doctor, validate): the model is
    built on the meta device (no memory, no weights), so a typo costs a second, not a load.
    A model whose config cannot be read is left to the loader's own error.
    """
    settings = cfg.model.lora
    if not settings.enabled or isinstance(settings.target_modules, str):
        return
    model = _meta_model(cfg)
    if model is not None:
        resolve_target_modules(settings, model)  # the loader's own check, on the meta model


def _meta_model(cfg: Any) -> Any:
    """The configured architecture instantiated on the meta device, or None when unreadable."""
    import torch
    from transformers import AutoConfig, AutoModel

    try:
        config = AutoConfig.from_pretrained(
            cfg.model.name_or_path, revision=cfg.model.revision, trust_remote_code=cfg.model.trust_remote_code
        )
        with torch.device("meta"):
            return AutoModel.from_config(config, trust_remote_code=cfg.model.trust_remote_code)
    except (OSError, ValueError, KeyError):
        return None
