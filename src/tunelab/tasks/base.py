"""The Task interface: everything that differs between classification, summarization and sft.

training/, inference/ and the CLI talk to a Task and never branch on the task type themselves.
A Task is built from the resolved Config (and, after data loading, the label map).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
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


def task_from_config(cfg: Config, label_names: list[str] | None = None) -> Task:
    """Build the Task for `cfg.task.type`. Imports lazily: heavy per-task deps load only when used."""
    kind = cfg.task.type
    if kind == "classification":
        from tunelab.tasks.classification import ClassificationTaskImpl

        return ClassificationTaskImpl(cfg, label_names)
    if kind == "summarization":
        from tunelab.tasks.summarization import SummarizationTaskImpl

        return SummarizationTaskImpl(cfg)
    if kind == "sft":
        from tunelab.tasks.sft import SFTTaskImpl

        return SFTTaskImpl(cfg, label_names)
    raise AssertionError(f"unknown task type {kind}")  # pydantic already rejects this


def build_seeded_model(task: Task, cfg: Config, plan: RuntimePlan, tokenizer: Any, **kwargs: Any) -> Any:
    """task.build_model with every RNG seeded from training.seed first: a fresh head (or LoRA
    adapter) is then initialised the same way in every run of the config, and in doctor's probe
    of it. The Trainer seeds only when it is constructed, after the model already exists."""
    from transformers import set_seed

    set_seed(cfg.training.seed)
    return task.build_model(cfg, plan, tokenizer, **kwargs)


def load_saved_task(run_dir: Path) -> tuple[Config, Task]:
    """Config + Task of a finished run (for predict/evaluate/export)."""
    from tunelab.runs import load_run

    run = load_run(run_dir)
    return run.config, task_from_config(run.config, run.label_names)
