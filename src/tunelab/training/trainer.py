"""Trainer construction shared by every task: arguments, batching, callbacks, atomic checkpoints.

Tasks call `build_trainer(task=self, ...)` with their own trainer class where they need one
(Seq2SeqTrainer, trl's SFTTrainer) and get the same policy: TrainingArguments from the config and
the runtime plan, the batching strategy's collator and sampler (data/batching.py), history +
progress + tracking callbacks, crash-safe checkpoints (training/checkpointing.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tunelab.config.schema import Config
    from tunelab.runtime.plan import RuntimePlan
    from tunelab.training.tracking import Tracker

log = logging.getLogger(__name__)


def batching_setup(
    task: Any, cfg: Config, plan: RuntimePlan, model: Any, tokenizer: Any
) -> tuple[Any, dict[str, Any], str]:
    """(collator, TrainingArguments overrides, description) for the configured batching strategy.

    The one place the collator is chosen; data/batching.py owns the strategies themselves.
    """
    from tunelab.data import batching
    from tunelab.runtime.plan import plan_for_model

    plan = plan_for_model(plan, model)  # the attention the model really loaded with
    strategy, reason = batching.resolve_strategy(cfg, plan, model)
    collator = batching.make_collator(
        strategy,
        tokenizer,
        task.task_kind,
        cfg.data.max_length,
        varlen_attention=plan.varlen_attention,
    )
    return collator, batching.trainer_overrides(strategy), f"batching: {reason}"


def build_trainer(
    *,
    task: Any,
    cfg: Config,
    plan: RuntimePlan,
    model: Any,
    tokenizer: Any,
    train_dataset: Any,
    eval_dataset: Any = None,
    output_dir: str | Path,
    history_path: str | Path | None = None,
    tracker: Tracker | None = None,
    callbacks: Sequence[Any] = (),
    trainer_cls: type | None = None,
    args_cls: type | None = None,
    args_overrides: dict[str, Any] | None = None,
    collator: Any = None,
    **trainer_kwargs: Any,
) -> Any:
    """A ready-to-train HF trainer. `trainer_kwargs` go to the trainer's constructor."""
    from transformers import EarlyStoppingCallback, Trainer
    from transformers.trainer_callback import PrinterCallback

    from tunelab import ui
    from tunelab.data.batching import resolve_strategy
    from tunelab.runtime.plan import plan_for_model
    from tunelab.training.arguments import training_arguments
    from tunelab.training.best_load import best_load_class
    from tunelab.training.callbacks import HistoryCallback, RichProgressCallback
    from tunelab.training.checkpointing import atomic_trainer_class

    auto_collator, batching_args, reason = batching_setup(task, cfg, plan, model, tokenizer)
    ui.err().print(reason)
    # The strategy the collator was built for (the plan as the model really loaded: see batching_setup).
    strategy, _ = resolve_strategy(cfg, plan_for_model(plan, model), model)
    # Tasks whose primary metric needs generation (rouge_sum) pick checkpoints by another
    # metric during training, e.g. ("loss", False); the default is the primary metric.
    metric, greater = task.checkpoint_metric
    args = training_arguments(
        cfg,
        plan,
        output_dir,
        primary_metric=metric,
        greater_is_better=greater,
        args_cls=args_cls,
        has_eval=eval_dataset is not None,
        **{**batching_args, **(args_overrides or {})},
    )
    extra: list[Any] = [RichProgressCallback()]
    last: list[Any] = []
    if history_path is not None:
        from tunelab.training.step_stats import StepStats

        sinks = [tracker.log_metrics] if tracker is not None else []
        stats = StepStats()  # data wait, step time, padding efficiency into history.jsonl
        setup = {"batching": strategy}
        extra.append(HistoryCallback(history_path, sinks=sinks, stats=stats, setup=setup))
        last.append(stats)  # after every other callback: their logging/tracking time is not data wait
    if cfg.training.early_stopping_patience and args.load_best_model_at_end:
        extra.append(EarlyStoppingCallback(early_stopping_patience=cfg.training.early_stopping_patience))
    trainer_kwargs.setdefault("compute_metrics", task.compute_metrics)
    cls = with_train_sampler(best_load_class(atomic_trainer_class(trainer_cls or Trainer)), strategy)
    trainer = cls(
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        data_collator=collator or auto_collator,
        callbacks=[*extra, *callbacks, *last],
        **trainer_kwargs,
    )
    trainer.remove_callback(PrinterCallback)  # our progress callback prints the log lines
    return trainer


def with_train_sampler(cls: type, strategy: str) -> type:
    """`cls` with our train sampler for `strategy` (data/batching.make_train_sampler), if it has one.

    transformers picks samplers by name (`train_sampling_strategy`) and has no slot for another
    one, so `_get_train_sampler` is the hook; strategies it covers itself return `cls` unchanged.
    """
    if strategy != "bucketed":
        return cls
    from tunelab.data.batching import make_train_sampler

    class BucketedTrainer(cls):  # type: ignore[misc, valid-type]
        def _get_train_sampler(self, train_dataset: Any = None) -> Any:
            dataset = train_dataset if train_dataset is not None else self.train_dataset
            batch = self.args.train_batch_size * self.args.gradient_accumulation_steps
            seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
            return make_train_sampler(strategy, dataset, batch, seed) or super()._get_train_sampler(train_dataset)

    BucketedTrainer.__name__ = BucketedTrainer.__qualname__ = cls.__name__
    return BucketedTrainer
