"""The classifier's training loss: per-sample cross-entropy with label smoothing and class weights.

Class weights (`task.class_weights`) are ours because the Trainer has no option for them (its
only hook is `compute_loss_func`, used here). `balanced` is scikit-learn's rule
n_rows / (n_classes * n_rows_of_class): its mean over the training rows is exactly 1, so the loss
keeps its scale (and the learning rate its meaning) while every class carries the same total
weight. `sqrt` is the square root of that, rescaled to mean 1 over the rows again: half the
correction in log terms, and a rare class of 50 rows among 2M rows and 280 classes weighs ~12
instead of ~143, so one rare row does not dominate its batch. Explicit weights are used as given.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from tunelab.errors import ConfigError


def class_weights(
    spec: str | Mapping[str, float], label_names: Sequence[str], train_label_ids: Sequence[int]
) -> list[float] | None:
    """Per-class loss weights in label-id order, or None for an unweighted loss."""
    if spec == "none":
        return None
    if isinstance(spec, Mapping):
        check_weight_labels(spec, label_names)
        return [float(spec.get(name, 1.0)) for name in label_names]
    counts = Counter(int(i) for i in train_label_ids if int(i) >= 0)
    total, k = sum(counts.values()), len(label_names)
    if not total:
        return None  # no labelled rows to weigh by
    # A declared label without a training row gets the weight of a single row: finite, and it
    # cannot be learnt from this data anyway.
    weights = [total / (k * max(counts.get(i, 0), 1)) for i in range(k)]
    if spec == "sqrt":
        weights = [w**0.5 for w in weights]
        mean = sum(weights[i] * n for i, n in counts.items()) / total
        weights = [w / mean for w in weights]
    return weights


def check_weight_labels(spec: str | Mapping[str, float], label_names: Sequence[str]) -> None:
    """Explicit weights must name labels of this run (checked as soon as the labels are known)."""
    if not isinstance(spec, Mapping) or not label_names:
        return
    unknown = sorted(set(spec) - set(label_names))
    if unknown:
        raise ConfigError(
            f"task.class_weights: {unknown[0]!r} is not a label of this run ({len(label_names)} labels)",
            hint=f"use the labels as they are written in the training file, e.g. {list(label_names)[:3]}",
        )


class ClassificationLoss:
    """The Trainer's loss for every classifier: per-sample cross-entropy (label smoothing, class
    weights), summed and divided by the samples of the whole accumulated batch (`num_items_in_batch`).

    Why ours: the Trainer trusts a model whose forward takes **kwargs to normalise its own loss by
    `num_items_in_batch` and then skips dividing by the accumulation steps, but stock encoder
    heads (BERT & co.) average per micro-batch: with 4 accumulation steps their loss and gradients
    came out 4x those of one batch of the same size. With `compute_loss_func` set the Trainer
    passes the count here, so 16 x 1 and 4 x 4 give the same step (tests/test_training_accumulation.py).
    Weighted, the sum is still divided by the number of samples (not by the sum of their weights),
    so accumulation stays exact: a micro-batch's share does not depend on which classes it drew.
    """

    def __init__(self, label_smoothing: float = 0.0, weights: Sequence[float] | None = None) -> None:
        self.label_smoothing = float(label_smoothing)
        self.weights = [float(w) for w in weights] if weights is not None else None

    def __call__(self, outputs: Any, labels: Any, num_items_in_batch: Any = None) -> Any:
        import torch

        from tunelab.models.pooling import per_sample_loss

        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        labels = labels.to(logits.device)
        losses = per_sample_loss(logits, labels, None, self.label_smoothing)
        if self.weights is not None:
            table = torch.tensor(self.weights, dtype=losses.dtype, device=losses.device)
            flat = labels.view(-1)
            losses = losses * torch.where(flat >= 0, table[flat.clamp(min=0)], torch.zeros_like(losses))
        if num_items_in_batch is None:  # evaluation, or a caller without accumulation
            num_items_in_batch = labels.ne(-100).sum().clamp(min=1)
        elif hasattr(num_items_in_batch, "to"):
            num_items_in_batch = num_items_in_batch.to(losses.device)
        return losses.sum() / num_items_in_batch
