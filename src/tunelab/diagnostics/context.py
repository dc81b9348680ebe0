"""What every preflight check reads: the config, the runtime plan, the task, model, tokenizer and
the tokenized splits, plus a few derived facts (task kind, class count) computed once.

Checks take a `CheckContext` and return findings; they never mutate the model's weights (the
ones that run a backward restore training mode and drop gradients).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tunelab.config.schema import Config
    from tunelab.runtime.plan import Capabilities, RuntimePlan

# Column reads are capped so doctor stays seconds on million-row data (a uniform sample).
MAX_ROWS = 50_000
ROW_READ_LIMIT = 2_000


@dataclass
class CheckContext:
    cfg: Config
    plan: RuntimePlan | None
    task: Any = None
    model: Any = None
    tokenizer: Any = None
    train_dataset: Any = None
    eval_dataset: Any = None
    caps: Capabilities | None = None
    manifest: dict[str, Any] | None = None  # data/ manifest with its warnings, when known
    collate_fn: Any = None  # the training collator; default: padding collator for the task
    overfit: bool = False
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """ "classification" | "seq2seq" | "causal": what the loss is computed over."""
        if not self.cfg.task.generative:
            return "classification"
        config = getattr(self.model, "config", None)
        return "seq2seq" if getattr(config, "is_encoder_decoder", False) else "causal"

    @property
    def num_labels(self) -> int | None:
        config = getattr(self.model, "config", None)
        n = getattr(config, "num_labels", None)
        return int(n) if n and self.kind == "classification" else None

    def runnable(self) -> bool:
        """Whether the model can be run on the training data (model, rows, labels inside the head)."""
        if self.model is None or self.train_dataset is None or len(self.train_dataset) == 0:
            return False
        return not self.labels_outside_head()

    def labels_outside_head(self) -> bool:
        """Classification labels the head cannot score: cross-entropy would index out of range."""
        labels, head = self.column("labels"), self.num_labels
        if not labels or not head or isinstance(labels[0], (list, tuple)):
            return False
        return any(v is not None and int(v) != -100 and not 0 <= int(v) < head for v in labels)

    def column(self, name: str, split: str = "train") -> list[Any] | None:
        """A column of a split (sampled to MAX_ROWS), or None when the split lacks it."""
        key = f"{split}:{name}"
        if key not in self.cache:
            ds = self.train_dataset if split == "train" else self.eval_dataset
            self.cache[key] = read_column(ds, name)
        return self.cache[key]


def read_column(ds: Any, name: str, limit: int = MAX_ROWS) -> list[Any] | None:
    if ds is None:
        return None
    n = len(ds)
    idx = list(range(n)) if n <= limit else sorted(random.Random(0).sample(range(n), limit))
    names = getattr(ds, "column_names", None)
    if names is not None:  # datasets.Dataset: columnar read, no per-row Python
        if name not in names:
            return None
        return list(ds[name]) if n <= limit else list(ds.select(idx)[name])
    # A torch-style dataset of dicts: per-row reads can be slow (that is what its __getitem__
    # does), so fewer of them.
    idx = idx[:ROW_READ_LIMIT]
    rows = [ds[i] for i in idx]
    if not rows or name not in rows[0]:
        return None
    return [r[name] for r in rows]
