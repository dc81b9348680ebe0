"""What summarization and sft share: a text -> text task on a seq2seq or causal LM.

The model kind comes from the model's config (`is_encoder_decoder`), read once from config.json:
- encoder-decoder -> `Seq2SeqTrainer`; the encoder gets the source text, labels are the target
  ids ending with EOS. `predict_with_generate` is off while training (eval = loss only, fast);
  the generated-text metric (ROUGE / label F1) is computed once at the end by `predict`+`score`.
- decoder-only -> TRL `SFTTrainer` on prompt/completion pairs that we pre-tokenize in
  `tokenize` (so the data cache holds them): input_ids + labels with -100 on the prompt
  (tasks/prompting.py). SFTTrainer gets `skip_prepare_dataset` (it must not re-tokenize,
  re-truncate or rebuild our labels) and a collator that pads labels with -100.
LoRA / QLoRA / device_map placement are applied in `build_model` (models/lora.py,
models/quantization.py, models/placement.py).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunelab.protocols import Prediction
from tunelab.tasks.prompting import PromptSpec, causal_example, seq2seq_example

if TYPE_CHECKING:
    import pandas as pd

    from tunelab.config.schema import Config
    from tunelab.runtime.plan import RuntimePlan

# Bump when tokenize() changes: it is part of every cache key.
PREPROCESSING_VERSION = "gen-1"


class GenerativeTask:
    """Base of SummarizationTaskImpl and SFTTaskImpl; subclasses set the columns and metrics."""

    name: str
    preprocessing_version = PREPROCESSING_VERSION
    greater_is_better = True
    # Generated answers have no label map in model/ (an sft label set lives in the config).
    label_names: list[str] | None = None
    # Checkpoint selection during training: eval loss (the primary metric needs generation).
    checkpoint_metric = ("loss", False)
    source_column: str
    target_column: str
    alias: str  # the template's name for the source text

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.t = cfg.task
        self.id_column = self.t.id_column

    @property
    def primary_metric(self) -> str:
        return self.cfg.task.primary_metric

    # ------------------------------------------------------------------ model kind & prompt
    @functools.cached_property
    def is_encoder_decoder(self) -> bool:
        from tunelab.models.loading import model_family

        return model_family(self.cfg).is_encoder_decoder

    @property
    def task_kind(self) -> str:
        """Batching kind for data/batching.py's collators."""
        return "seq2seq" if self.is_encoder_decoder else "causal_lm"

    @property
    def spec(self) -> PromptSpec:
        return PromptSpec(
            self.t.prompt_template, self.source_column, self.alias, self.t.system_prompt, self.t.use_chat_template
        )

    def encoder_source(self, row: dict[str, Any]) -> str:
        """What an encoder-decoder reads (subclasses decide whether the template applies)."""
        return str(row.get(self.source_column) or "")

    # ------------------------------------------------------------------ Task protocol: data
    def required_columns(self, split: str) -> list[str]:
        from tunelab.data.roles import roles_for

        return list(roles_for(self.t, split).text)

    def cache_fingerprint(self) -> dict[str, Any]:
        return {
            "task": self.t.model_dump(mode="json"),
            "max_length": self.cfg.data.max_length,
            "truncation_side": self.cfg.data.truncation_side,
            "kind": self.task_kind,
            "version": self.preprocessing_version,
        }

    def example(self, tokenizer: Any, row: dict[str, Any], target: str | None) -> dict[str, list[int]]:
        """Token ids of one row (labels only with a target); the same code path trains and predicts."""
        d = self.cfg.data
        if self.is_encoder_decoder:
            return seq2seq_example(
                tokenizer,
                self.encoder_source(row),
                target,
                max_length=d.max_length,
                max_target_length=self.t.max_target_length,
            )
        return causal_example(
            self.spec,
            tokenizer,
            row,
            target,
            max_length=d.max_length,
            max_target_length=self.t.max_target_length,
            side=d.truncation_side,
        )

    def tokenize(self, batch: dict[str, list[Any]], tokenizer: Any) -> dict[str, list[Any]]:
        """Batched map: raw columns -> input_ids, attention_mask, labels (when the target is there).

        Also `untruncated_length` (prompt and target are truncated separately, so data/tokenize.py
        could not measure it by re-tokenizing without truncation).
        """
        n = len(next(iter(batch.values())))
        has_target = self.target_column in batch
        out: dict[str, list[Any]] = {"input_ids": [], "attention_mask": [], "untruncated_length": []}
        if has_target:
            out["labels"] = []
        for i in range(n):
            row = {k: v[i] for k, v in batch.items()}
            target = str(row[self.target_column]) if has_target and row[self.target_column] is not None else None
            ex = self.example(tokenizer, row, target if has_target else None)
            if has_target:
                out["labels"].append(ex.get("labels", []))
            out["input_ids"].append(ex["input_ids"])
            out["attention_mask"].append(ex["attention_mask"])
            out["untruncated_length"].append(max(ex.pop("untruncated_length", 0), len(ex["input_ids"])))
        return out

    # ------------------------------------------------------------------ model
    def build_model(self, cfg: Config, plan: RuntimePlan, tokenizer: Any, run_dir: Path | None = None) -> Any:
        """Load seq2seq / causal LM with quantization, placement and LoRA as configured."""
        from tunelab.models.lora import apply_lora
        from tunelab.models.placement import memory_plan, placement_kwargs, print_memory_plan
        from tunelab.models.quantization import check_optimizer, is_quantized, prepare_quantized, quantization_kwargs

        check_optimizer(cfg, plan)
        if is_quantized(cfg) and not cfg.model.lora.enabled:
            from tunelab.errors import ConfigError

            raise ConfigError(
                "model.quantization: quantized weights cannot be trained directly",
                hint="set model.lora.enabled: true (QLoRA)",
            )
        kwargs = {**quantization_kwargs(cfg, plan), **placement_kwargs(cfg, run_dir)}
        model = self._load(cfg, plan, tokenizer, **kwargs)
        self.memory_plan = memory_plan(model)
        print_memory_plan(self.memory_plan)
        model = prepare_quantized(model, cfg, plan)
        if cfg.model.lora.enabled:
            model = apply_lora(model, cfg.model.lora, gradient_checkpointing=plan.gradient_checkpointing)
        self._tokenizer = tokenizer
        return model

    def _load(self, cfg: Config, plan: RuntimePlan, tokenizer: Any, **kwargs: Any) -> Any:
        from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

        from tunelab.models.loading import load_model

        auto_cls = AutoModelForSeq2SeqLM if self.is_encoder_decoder else AutoModelForCausalLM
        return load_model(cfg, plan, tokenizer, auto_cls, **kwargs)

    def load_trained(self, cfg: Config, plan: RuntimePlan, model_dir: Path) -> tuple[Any, Any]:
        """(tokenizer, model) of a finished run: full weights in model/, or the base + LoRA adapters there.

        Called by pipeline/predict.py. The tokenizer always comes from model/ (it may have grown a
        pad token during training; the base is resized to it before the adapters are applied).
        """
        from tunelab.models.lora import is_peft_dir
        from tunelab.models.placement import placement_kwargs
        from tunelab.models.quantization import quantization_kwargs
        from tunelab.models.tokenizer import load_tokenizer

        local = cfg.model_copy(
            update={"model": cfg.model.model_copy(update={"name_or_path": str(model_dir), "revision": None})}
        )
        tokenizer = load_tokenizer(local)
        # model_dir is <run_dir>/model: offloaded weights go to <run_dir>/offload, as in training.
        place = placement_kwargs(cfg, Path(model_dir).parent)
        if not is_peft_dir(model_dir):
            return tokenizer, self._load(local, plan, tokenizer, **place)
        from peft import PeftModel

        base = self._load(cfg, plan, tokenizer, **quantization_kwargs(cfg, plan), **place)
        self._tokenizer = tokenizer
        return tokenizer, PeftModel.from_pretrained(base, str(model_dir), is_trainable=False)

    # ------------------------------------------------------------------ trainer
    def build_trainer(self, **kwargs: Any) -> Any:
        from tunelab.tasks.generative_trainer import build_generative_trainer

        return build_generative_trainer(self, **kwargs)

    def compute_metrics(self, eval_pred: Any) -> dict[str, float]:
        """Metrics from generated ids (only used when someone turns `predict_with_generate` on)."""
        import numpy as np

        tok = self._tokenizer
        preds, labels = eval_pred.predictions, eval_pred.label_ids
        preds = preds[0] if isinstance(preds, tuple) else preds
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        preds = np.where(preds < 0, pad, preds)
        labels = np.where(labels < 0, pad, labels)
        texts = [" ".join(t.split()) for t in tok.batch_decode(preds, skip_special_tokens=True)]
        refs = [" ".join(t.split()) for t in tok.batch_decode(labels, skip_special_tokens=True)]
        return self.text_metrics(texts, [[r] for r in refs])

    def text_metrics(self, predictions: list[str], references: list[list[str]]) -> dict[str, float]:
        raise NotImplementedError

    # ------------------------------------------------------------------ prediction
    def generate(
        self,
        model: Any,
        tokenizer: Any,
        frame: pd.DataFrame,
        cfg: Config,
        plan: RuntimePlan | None = None,
        *,
        description: str = "generating",
    ) -> list[str]:
        from tunelab.inference.generation import generate_from_ids

        prompts = [self.example(tokenizer, row, None)["input_ids"] for row in self.rows(frame)]
        return generate_from_ids(
            model,
            tokenizer,
            prompts,
            cfg.inference.generation,
            cfg.inference.batch_size,
            description=description,
            plan=plan,
        )

    def rows(self, frame: pd.DataFrame) -> list[dict[str, Any]]:
        from tunelab.errors import DataError

        if self.source_column not in frame.columns:
            raise DataError(
                f"column {self.source_column!r} missing from the input",
                hint=f"columns: {', '.join(map(str, frame.columns))}",
            )
        records = frame.to_dict("records")
        return [{k: (None if _isna(v) else v) for k, v in r.items()} for r in records]

    def ids(self, frame: pd.DataFrame, cfg: Config) -> list[Any]:
        for col in (self.id_column, cfg.inference.id_column):
            if col and col in frame.columns:
                return frame[col].tolist()
        return list(range(len(frame)))

    def predict(self, model: Any, tokenizer: Any, frame: pd.DataFrame, cfg: Config, plan: RuntimePlan) -> Prediction:
        texts = self.generate(model, tokenizer, frame, cfg, plan)
        return Prediction(ids=self.ids(frame, cfg), columns={cfg.inference.prediction_column: texts})

    def references(self, frame: pd.DataFrame) -> list[list[str]]:
        cols = [self.target_column] + list(getattr(self.t, "extra_target_columns", []) or [])
        from tunelab.errors import DataError

        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise DataError(
                f"reference column(s) {missing} missing from the file to score",
                hint="score a file that has the targets",
            )
        return [[str(r[c]) for c in cols if not _isna(r[c])] for r in frame.to_dict("records")]


def _isna(value: Any) -> bool:
    try:
        import pandas as pd

        return bool(pd.isna(value)) if not isinstance(value, (list, tuple, dict)) else False
    except (TypeError, ValueError):
        return False
