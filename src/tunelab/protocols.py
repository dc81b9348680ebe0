"""The Task contract every floor codes against: what differs between classification,
summarization and sft, asked of a task object instead of branching on the task type.

It lives on a low floor so that data/, diagnostics/, inference/ and training/ can name it (and
build `Prediction`s) without importing tasks/, which sits above them and implements it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pandas as pd
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from tunelab.config.schema import Config
    from tunelab.runtime.plan import RuntimePlan


@dataclass
class Prediction:
    """What `Task.predict` returns: one row per input, in input order."""

    ids: list[Any]
    columns: dict[str, list[Any]]  # written to the output file, after the id column
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. probabilities (n, C) for ensembling


class Task(Protocol):
    name: str  # "classification" | "summarization" | "sft"
    # Bump when the tokenization logic changes: part of every cache key.
    preprocessing_version: str

    def required_columns(self, split: str) -> list[str]:
        """Columns a data file must have for `split` ("train", "validation", "test", "predict")."""

    def cache_fingerprint(self) -> dict[str, Any]:
        """Everything of the task that decides the tokens (templates, columns, max lengths)."""

    def tokenize(self, batch: dict[str, list[Any]], tokenizer: PreTrainedTokenizerBase) -> dict[str, list[Any]]:
        """Batched `datasets.map` function: raw columns -> model inputs (input_ids, labels, ...)."""

    def build_model(self, cfg: Config, plan: RuntimePlan, tokenizer: PreTrainedTokenizerBase) -> PreTrainedModel:
        """Load the model for this task (with label map, LoRA, quantization as configured)."""

    def build_trainer(self, **kwargs: Any) -> Any:
        """Construct the HF trainer (Trainer / Seq2SeqTrainer / SFTTrainer) for this task."""

    def compute_metrics(self, eval_pred: Any) -> dict[str, float]:
        """Metrics from a trainer's EvalPrediction; includes `primary_metric`."""

    primary_metric: str  # e.g. "macro_f1", "rouge_sum"
    greater_is_better: bool

    def predict(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        frame: pd.DataFrame,
        cfg: Config,
        plan: RuntimePlan,
    ) -> Prediction:
        """Batched prediction (length-ordered), returned in input order."""

    def score(self, prediction: Prediction, frame: pd.DataFrame) -> dict[str, Any]:
        """Metrics of predictions against the labels/references in `frame`."""
