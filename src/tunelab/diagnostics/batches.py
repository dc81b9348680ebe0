"""A few real training batches for the checks that run the model, collated like training does.

The collator is the one training uses when the caller passes it (`collate_fn`); otherwise the
stock transformers padding collators (classification: DataCollatorWithPadding; generative:
DataCollatorForSeq2Seq, which pads labels with -100). Columns the model's forward does not take
are dropped, as the Trainer's `remove_unused_columns` does.
"""

from __future__ import annotations

import contextlib
import inspect
import random
from collections.abc import Iterator
from typing import Any

from tunelab.diagnostics.context import CheckContext

MODEL_KEYS = (
    "input_ids",
    "attention_mask",
    "token_type_ids",
    "position_ids",
    "labels",
    "decoder_input_ids",
    "decoder_attention_mask",
)


def forward_params(model: Any) -> set[str]:
    """Named parameters of the (unwrapped) model's forward."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return set(inspect.signature(inner.forward).parameters)


def model_collator(ctx: CheckContext) -> Any:
    """collate(list of row dicts) -> dict of tensors, keeping only what the forward accepts."""
    accepted = forward_params(ctx.model) if ctx.model is not None else set(MODEL_KEYS)
    keys = [k for k in MODEL_KEYS if k in accepted]
    base = ctx.collate_fn or _stock_collator(ctx)
    causal = ctx.kind == "causal"

    def collate(rows: list[dict[str, Any]]) -> dict[str, Any]:
        rows = [{k: r[k] for k in keys if k in r} for r in rows]
        if causal and rows and "labels" not in rows[0] and ctx.collate_fn is None:
            rows = [{**r, "labels": list(r["input_ids"])} for r in rows]  # causal LM: labels = inputs
        return base(rows)

    return collate


def _stock_collator(ctx: CheckContext) -> Any:
    from transformers import DataCollatorForSeq2Seq, DataCollatorWithPadding

    if ctx.kind == "classification":
        return DataCollatorWithPadding(ctx.tokenizer, return_tensors="pt")
    model = ctx.model if ctx.kind == "seq2seq" else None  # seq2seq: decoder_input_ids from labels
    return DataCollatorForSeq2Seq(ctx.tokenizer, model=model, label_pad_token_id=-100, return_tensors="pt")


def batch_size(ctx: CheckContext) -> int:
    bs = ctx.cfg.training.per_device_train_batch_size
    return bs if getattr(ctx.tokenizer, "pad_token_id", None) is not None else 1


def sample_rows(ds: Any, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """`n` rows spread over the dataset (deterministic), as dicts."""
    total = len(ds)
    idx = sorted(random.Random(seed).sample(range(total), min(n, total)))
    return [ds[i] for i in idx]


def sample_batches(ctx: CheckContext, n_batches: int, size: int | None = None) -> list[dict[str, Any]]:
    size = size or batch_size(ctx)
    rows = sample_rows(ctx.train_dataset, n_batches * size)
    collate = model_collator(ctx)
    return [collate(rows[i : i + size]) for i in range(0, len(rows), size) if rows[i : i + size]]


def model_device(model: Any) -> Any:
    import torch

    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def to_device(batch: dict[str, Any], device: Any) -> dict[str, Any]:
    return {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}


def autocast(ctx: CheckContext, device: Any) -> contextlib.AbstractContextManager[Any]:
    """The plan's autocast, so doctor sees the numbers training will see."""
    from tunelab.runtime.plan import autocast_context

    return autocast_context(ctx.plan, device.type)


@contextlib.contextmanager
def train_mode(model: Any, on: bool) -> Iterator[None]:
    """Switch train/eval for a probe and restore the caller's mode after."""
    was = model.training
    model.train(on)
    try:
        yield
    finally:
        model.train(was)
