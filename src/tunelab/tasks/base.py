"""Building the Task for a config: `task_from_config` picks the implementation by `task.type`.

The contract itself (`Task`, `Prediction`) is in tunelab/protocols.py, on a floor below the
ones that use it. A Task is built from the resolved Config (and, after data loading, the label map).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tunelab.protocols import Prediction, Task

if TYPE_CHECKING:
    from tunelab.config.schema import Config
    from tunelab.runtime.plan import RuntimePlan

__all__ = ["Prediction", "Task", "build_seeded_model", "task_from_config"]


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
