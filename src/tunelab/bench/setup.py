"""What `tunelab bench` measures on: the config's train split (tokenized through the cache) and model.

Reuses the pipeline's own pieces (data.splits, data.tokenize, models.tokenizer, the Task's
build_model), so bench measures the model and tokens that `tunelab train` would use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tunelab.config.schema import Config
    from tunelab.runtime.plan import RuntimePlan


@dataclass
class BenchInputs:
    rows: Any  # datasets.Dataset with input_ids, labels, length
    tokenizer: Any
    task_kind: str  # "classification" | "causal_lm" | "seq2seq"
    make_model: Callable[[], Any]


def task_kind_of(task: Any) -> str:
    kind = getattr(task, "task_kind", None)
    if kind:
        return kind
    return "seq2seq" if getattr(task, "is_encoder_decoder", False) else "causal_lm"


def load_bench_inputs(cfg: Config, plan: RuntimePlan) -> BenchInputs:
    from tunelab.data.splits import load_splits
    from tunelab.data.tokenize import tokenize_split
    from tunelab.models.tokenizer import load_tokenizer
    from tunelab.tasks.base import task_from_config

    splits = load_splits(cfg)
    task = task_from_config(cfg, splits.label_names)
    tokenizer = load_tokenizer(cfg)
    rows = tokenize_split(splits.train, task, tokenizer, cfg, "train")
    keep = [c for c in ("input_ids", "attention_mask", "labels", "length") if c in rows.column_names]
    rows = rows.select_columns(keep)
    return BenchInputs(
        rows=rows,
        tokenizer=tokenizer,
        task_kind=task_kind_of(task),
        make_model=lambda: task.build_model(cfg, plan, tokenizer),
    )
