"""What `tunelab bench` measures on: the config's train split (tokenized through the cache) and model.

Built through the one prepare path (pipeline/prepare.py) and the Task's build_model, so bench
measures the model and tokens that `tunelab train` would use.
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


def load_bench_inputs(cfg: Config, plan: RuntimePlan) -> BenchInputs:
    from tunelab.pipeline.prepare import prepare

    prepared = prepare(cfg, tokenize=("train",))
    task, tokenizer = prepared.task, prepared.tokenizer
    rows = prepared.datasets["train"]
    keep = [c for c in ("input_ids", "attention_mask", "labels", "length") if c in rows.column_names]
    rows = rows.select_columns(keep)
    return BenchInputs(
        rows=rows,
        tokenizer=tokenizer,
        task_kind=task.task_kind,
        make_model=lambda: task.build_model(cfg, plan, tokenizer),
    )
