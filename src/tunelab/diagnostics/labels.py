"""Check 2, labels (classification): every label id inside the head, class count == head size,
smallest class, imbalance ratio.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from tunelab.diagnostics.context import CheckContext
from tunelab.diagnostics.findings import Finding, error, info, warning

MIN_CLASS_COUNT = 5  # fewer training samples than this: the class is barely learnable


def check_labels(ctx: CheckContext) -> list[Finding]:
    if ctx.kind != "classification" or ctx.train_dataset is None:  # no data built: data.load says why
        return []
    labels = ctx.column("labels")
    if labels is None:
        labels = ctx.column("label")
    if labels is None:
        return [
            warning(
                "labels.missing", "training data has no `labels` column", "check task.label_column and tokenization"
            )
        ]
    head = ctx.num_labels
    names = _label_names(ctx)
    out = _range(labels, head, names) + _head_size(head, names)
    out += _balance(ctx, labels, names)
    eval_labels = ctx.column("labels", "eval")
    if eval_labels is not None:
        out += [f for f in _range(eval_labels, head, names) if f.severity == "error"]
    return out


def _label_names(ctx: CheckContext) -> list[str] | None:
    for source in (ctx.task, ctx.manifest):
        names = getattr(source, "label_names", None) if not isinstance(source, dict) else source.get("label_names")
        if names:
            return list(names)
    id2label = getattr(getattr(ctx.model, "config", None), "id2label", None)
    return None if not id2label else [id2label[i] for i in sorted(id2label)]


def _range(labels: list[Any], head: int | None, names: list[str] | None) -> list[Finding]:
    ints = [int(v) for v in labels if v is not None and int(v) != -100]
    if not ints or head is None:
        return []
    bad = sorted({v for v in ints if v < 0 or v >= head})
    if not bad:
        return []
    return [
        error(
            "labels.range",
            f"{sum(v in set(bad) for v in ints)} labels outside the head's 0..{head - 1} "
            "(cross-entropy indexes out of range: a crash on GPU, garbage elsewhere)",
            "make the head size equal the label map (num_labels = len(label_names)); rebuild the label map from train",
            head_size=head,
            label_min=min(ints),
            label_max=max(ints),
            bad_label_ids=bad[:10],
            label_map_size=len(names) if names else None,
        )
    ]


def _head_size(head: int | None, names: list[str] | None) -> list[Finding]:
    if head is None or not names or len(names) == head:
        return []
    return [
        error(
            "labels.head_size",
            f"label map has {len(names)} classes, the head has {head} outputs",
            "build the model with num_labels=len(label_names) (task.build_model does this from the manifest)",
            head_size=head,
            label_map_size=len(names),
        )
    ]


def _balance(ctx: CheckContext, labels: list[Any], names: list[str] | None) -> list[Finding]:
    counts = Counter(int(v) for v in labels if v is not None and int(v) != -100)
    if not counts:
        return []
    n_classes = len(names) if names else (ctx.num_labels or len(counts))
    missing = [i for i in range(n_classes) if counts.get(i, 0) == 0]
    smallest_id, smallest = min(counts.items(), key=lambda kv: kv[1])
    largest = max(counts.values())
    ratio = largest / max(1, smallest)
    label = names[smallest_id] if names and 0 <= smallest_id < len(names) else smallest_id
    ev = dict(
        classes=n_classes,
        classes_in_train=len(counts),
        smallest_class=label,
        smallest_count=smallest,
        largest_count=largest,
        imbalance_ratio=round(ratio, 2),
    )
    out: list[Finding] = []
    if missing:
        out.append(
            warning(
                "labels.unseen",
                f"{len(missing)} classes of the label map have no training sample",
                "check the split (stratify) or drop those classes",
                missing=[names[i] if names else i for i in missing[:10]],
                **ev,
            )
        )
    threshold = ctx.cfg.data.imbalance_warn_ratio
    if ratio > threshold or smallest < MIN_CLASS_COUNT:
        title = (
            f"imbalance {ratio:.1f}x (threshold {threshold:g}), smallest class has {smallest} samples"
            if ratio > threshold
            else f"smallest class has only {smallest} training samples (fewer than {MIN_CLASS_COUNT})"
        )
        out.append(
            warning(
                "labels.imbalance",
                title,
                "watch macro-F1, consider class weights or more data for the rare classes",
                threshold=threshold,
                **ev,
            )
        )
    else:
        out.append(
            info("labels.balance", f"{len(counts)} classes, smallest {smallest} samples, imbalance {ratio:.1f}x", **ev)
        )
    return out
