"""`cfg.training` (Hugging Face names) + the RuntimePlan -> `TrainingArguments`.

The config's training section already uses TrainingArguments names, so most fields map 1:1. What
this adds is the policy the plan decided (precision, device, loaders, compile) and tunelab's
defaults: our own progress bar and tracking (HF's tqdm and integrations off), best checkpoint by
the task's primary metric, non-padding token counting for real tokens/s.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunelab.errors import ConfigError

if TYPE_CHECKING:
    from transformers import TrainingArguments

    from tunelab.config.schema import Config
    from tunelab.runtime.plan import RuntimePlan

# Fields of cfg.training passed through unchanged (same name, same meaning).
PASSTHROUGH = (
    "learning_rate",
    "per_device_train_batch_size",
    "per_device_eval_batch_size",
    "gradient_accumulation_steps",
    "num_train_epochs",
    "max_steps",
    "warmup_steps",
    "lr_scheduler_type",
    "weight_decay",
    "max_grad_norm",
    "adam_beta1",
    "adam_beta2",
    "adam_epsilon",
    "optim",
    "seed",
    "data_seed",
    "logging_steps",
    "eval_strategy",
    "eval_steps",
    "save_strategy",
    "save_steps",
    "save_total_limit",
)


def training_arguments(
    cfg: Config,
    plan: RuntimePlan,
    output_dir: str | Path,
    *,
    primary_metric: str,
    greater_is_better: bool,
    sampling: str = "group_by_length",
    args_cls: type | None = None,
    has_eval: bool = True,
    **overrides: Any,
) -> TrainingArguments:
    """Build `args_cls` (TrainingArguments, Seq2SeqTrainingArguments, trl.SFTConfig, ...).

    `sampling` is the train sampler ("group_by_length", "random", ...); `overrides` win over
    everything (e.g. `predict_with_generate=True` for Seq2Seq, `label_smoothing_factor`).
    """
    if args_cls is None:
        from transformers import TrainingArguments as args_cls
    kwargs = {name: getattr(cfg.training, name) for name in PASSTHROUGH}
    if kwargs["save_steps"] is None:
        del kwargs["save_steps"]  # keep transformers' default rather than passing None
    kwargs.update(_plan_kwargs(plan))
    kwargs.update(_eval_kwargs(cfg, primary_metric, greater_is_better, has_eval))
    kwargs.update(
        output_dir=str(output_dir),
        train_sampling_strategy=sampling,
        length_column_name="length",
        report_to=[],  # we track to MLflow ourselves (training/tracking.py)
        disable_tqdm=True,  # replaced by training/callbacks.py's rich progress bar
        logging_first_step=True,
        include_num_input_tokens_seen="non_padding",  # real tokens/s in history.jsonl
        save_only_model=False,  # optimizer/scheduler/RNG state make --resume exact
    )
    kwargs.update(overrides)
    try:
        return args_cls(**kwargs)
    except (ValueError, TypeError) as exc:
        # e.g. load_best_model_at_end with eval "epoch" but save "steps": a config problem.
        raise ConfigError(
            f"training: {str(exc).strip().splitlines()[0]}",
            hint="check training.eval_strategy / save_strategy / *_steps",
        ) from None


def _plan_kwargs(plan: RuntimePlan) -> dict[str, Any]:
    """Precision, device and loader settings: only what the runtime plan decided."""
    kwargs: dict[str, Any] = {
        "bf16": plan.precision == "bf16",
        "fp16": plan.precision == "fp16",
        "use_cpu": plan.device == "cpu",
        "tf32": plan.tf32 if plan.device == "cuda" else None,
        "dataloader_num_workers": plan.dataloader_num_workers,
        "dataloader_pin_memory": plan.dataloader_pin_memory,
        "dataloader_persistent_workers": plan.dataloader_persistent_workers,
        "dataloader_prefetch_factor": plan.dataloader_prefetch_factor,
        "torch_compile": plan.torch_compile,
        # transformers 5 name for gradient checkpointing (the old name warns and goes in v6).
        "activation_checkpointing": plan.gradient_checkpointing,
        "use_liger_kernel": plan.liger_kernels,
    }
    if plan.gradient_checkpointing:
        # Non-reentrant checkpointing works with frozen inputs (LoRA) and is the torch default going forward.
        kwargs["activation_checkpointing_kwargs"] = {"use_reentrant": False}
    return kwargs


def _eval_kwargs(cfg: Config, primary_metric: str, greater_is_better: bool, has_eval: bool) -> dict[str, Any]:
    """Evaluation cadence and best-checkpoint selection."""
    t = cfg.training
    eval_strategy = t.eval_strategy if has_eval else "no"
    metric = t.metric_for_best_model or primary_metric
    # The task knows the direction of its own primary metric; for any other metric (e.g. "loss")
    # leave it to transformers, which treats names ending in "loss" as lower-is-better.
    greater = greater_is_better if metric == primary_metric else None
    load_best = t.load_best_model_at_end and eval_strategy != "no" and t.save_strategy != "no"
    kwargs: dict[str, Any] = {
        "eval_strategy": eval_strategy,
        "load_best_model_at_end": load_best,
        "metric_for_best_model": metric if (load_best or t.save_strategy == "best") else None,
        "greater_is_better": greater,
    }
    if eval_strategy == "steps" and t.eval_steps is None:
        kwargs["eval_steps"] = t.logging_steps * 10
    if load_best and t.save_strategy == "steps" and eval_strategy == "steps" and t.save_steps is None:
        kwargs["save_steps"] = kwargs.get("eval_steps", t.eval_steps)
    return kwargs
