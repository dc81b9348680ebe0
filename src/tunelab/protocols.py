"""The Task contract every floor codes against: what differs between classification,
summarization and sft, asked of a task object instead of branching on the task type.

It lives on a low floor so that data/, diagnostics/, inference/ and training/ can name it (and
build `Prediction`s) without importing tasks/, which sits above them and implements it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pathlib import Path

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
    """Everything the floors outside tasks/ ask of a task; tasks/ implements it per task type."""

    name: str  # "classification" | "summarization" | "sft"
    # Bump when the tokenization logic changes: part of every cache key.
    preprocessing_version: str
    greater_is_better: bool  # of the primary metric

    @property
    def primary_metric(self) -> str:
        """The metric the task is judged by, e.g. "macro_f1", "rouge_sum" (from the config's task section)."""

    @property
    def checkpoint_metric(self) -> tuple[str, bool]:
        """(metric, greater_is_better) training keeps the best checkpoint by: the primary metric, or
        eval loss where the primary metric needs generation."""

    @property
    def task_kind(self) -> str:
        """What the loss is computed over, for data/batching.py's collators:
        "classification" | "seq2seq" | "causal_lm"."""

    @property
    def label_names(self) -> list[str] | None:
        """The label map saved with the model (model/labels.json); None when answers are text."""

    def required_columns(self, split: str) -> list[str]:
        """Columns a data file must have for `split` ("train", "validation", "test", "predict")."""

    def cache_fingerprint(self) -> dict[str, Any]:
        """Everything of the task that decides the tokens (templates, columns, max lengths)."""

    def tokenize(self, batch: dict[str, list[Any]], tokenizer: PreTrainedTokenizerBase) -> dict[str, list[Any]]:
        """Batched `datasets.map` function: raw columns -> model inputs (input_ids, labels, ...)."""

    def build_model(
        self, cfg: Config, plan: RuntimePlan, tokenizer: PreTrainedTokenizerBase, run_dir: Path | None = None
    ) -> PreTrainedModel:
        """Load the model for this task (label map, LoRA, quantization, placement as configured).
        `run_dir`: where a placed model may offload weights (<run_dir>/offload); None outside a run."""

    def load_trained(self, cfg: Config, plan: RuntimePlan, model_dir: Path) -> tuple[Any, PreTrainedModel]:
        """(tokenizer, model) of a finished run's model/ directory (full weights or LoRA adapters)."""

    def build_trainer(self, **kwargs: Any) -> Any:
        """Construct the HF trainer (Trainer / Seq2SeqTrainer / SFTTrainer) for this task."""

    def compute_metrics(self, eval_pred: Any) -> dict[str, float]:
        """Metrics from a trainer's EvalPrediction; includes `primary_metric`."""

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


class ClassifierTask(Task, Protocol):
    """A task whose answers are class ids with probabilities (test-time augmentation averages them)."""

    @property
    def label_names(self) -> list[str]: ...

    def prediction_columns(self, probs: Any, top_k: int) -> dict[str, list[Any]]:
        """Output columns (prediction, top-k labels and scores) from class probabilities (n, C)."""
