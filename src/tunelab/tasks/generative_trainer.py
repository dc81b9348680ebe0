"""Trainer construction for the generative tasks: Seq2SeqTrainer or TRL SFTTrainer.

The shared policy (arguments from cfg + plan, batching collator/sampler, progress/history/
tracking callbacks, atomic checkpoints) is training/trainer.py's `build_trainer`; this module
only picks the trainer and argument classes and the generative overrides:
- evaluation during training is loss-only (`prediction_loss_only`, no `predict_with_generate`):
  generating at every eval would dominate the run time. The text metric (ROUGE, label F1) is
  computed once at the end, by `task.predict` + `task.score` on the validation frame;
- the best checkpoint is therefore chosen by eval loss unless `training.metric_for_best_model`
  names another metric (`task.checkpoint_metric`, read by training/trainer.py);
- SFTTrainer gets our pre-tokenized prompt/completion rows with `skip_prepare_dataset`: it must
  not re-tokenize them, re-truncate them or rebuild labels (the collator pads labels with -100,
  so the EOS label survives even when pad == eos).
"""

from __future__ import annotations

from typing import Any


def generative_overrides(task: Any, cfg: Any) -> tuple[type, type, dict[str, Any]]:
    """(trainer class, arguments class, TrainingArguments overrides) for the task's model kind."""
    overrides: dict[str, Any] = {"prediction_loss_only": True}
    if task.is_encoder_decoder:
        from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments

        overrides["predict_with_generate"] = False
        return Seq2SeqTrainer, Seq2SeqTrainingArguments, overrides
    from trl import SFTConfig, SFTTrainer

    overrides.update(
        max_length=cfg.data.max_length,
        dataset_kwargs={"skip_prepare_dataset": True},
        packing=False,
        completion_only_loss=None,
        dataset_text_field="input_ids",
    )
    return SFTTrainer, SFTConfig, overrides


def build_generative_trainer(task: Any, **kwargs: Any) -> Any:
    """`training.trainer.build_trainer` with the generative trainer/arguments classes.

    kwargs are the orchestrator's (cfg, plan, model, tokenizer, train_dataset, eval_dataset,
    output_dir, history_path, tracker, callbacks); `args_overrides` are merged over ours.
    """
    from tunelab.training.trainer import build_trainer

    cfg = kwargs["cfg"]
    task._tokenizer = kwargs.get("tokenizer")
    trainer_cls, args_cls, overrides = generative_overrides(task, cfg)
    overrides.update(kwargs.pop("args_overrides", None) or {})
    # The text metric needs generation; during training only the loss is evaluated (see above).
    kwargs.setdefault("compute_metrics", None)
    return build_trainer(task=task, trainer_cls=trainer_cls, args_cls=args_cls, args_overrides=overrides, **kwargs)
