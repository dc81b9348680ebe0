"""What each sample order does to a batch, on real data: padding saved vs classes mixed.

No training: the training rows of a quality-benchmark data set are tokenized once, each order
draws one epoch of batch-size-32 batches (seeds 42-44), and the table gives padding efficiency
(real tokens / padded tokens), distinct classes per batch and distinct majority classes among 4
consecutive steps, next to random order's. Used by bench_quality.py, which prints this table
beside its accuracy table; it is how the window of `bucketed` can be weighed without a GPU-day.
"""

from __future__ import annotations

import statistics
from collections import Counter

BATCH = 32
WINDOWS = (2, 4, 8, 16)  # bucketed windows (batches per sorted window); 8 is BUCKET_WINDOW


def _orders(lengths: list[int], seed: int) -> dict[str, list[int]]:
    import torch
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from tunelab.data.batching import BucketedSampler

    gen = torch.Generator().manual_seed(seed)
    out = {"random (dynamic)": torch.randperm(len(lengths), generator=gen).tolist()}
    out["grouped (transformers)"] = list(LengthGroupedSampler(BATCH, lengths=lengths, generator=gen))
    for w in WINDOWS:
        out[f"bucketed, window {w}"] = list(BucketedSampler(lengths, BATCH, window=w, seed=seed))
    return out


def _stats(order: list[int], lengths: list[int], labels: list[str]) -> tuple[float, float, float]:
    batches = [order[i : i + BATCH] for i in range(0, len(order), BATCH)]
    real = sum(lengths[i] for b in batches for i in b)
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    per_batch = statistics.mean(len({labels[i] for i in b}) for b in batches)
    major = [Counter(labels[i] for i in b).most_common(1)[0][0] for b in batches]
    spans = [len(set(major[i : i + 4])) for i in range(len(major) - 3)]
    return real / padded, per_batch, statistics.mean(spans)


def composition_table(name: str, texts: list[str], labels: list[str], model_path: str, max_length: int) -> list[str]:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path)
    lengths = [len(ids) for ids in tok(texts, truncation=True, max_length=max_length)["input_ids"]]
    rows: dict[str, list[tuple[float, float, float]]] = {}
    for seed in (42, 43, 44):
        for order_name, order in _orders(lengths, seed).items():
            rows.setdefault(order_name, []).append(_stats(order, lengths, labels))
    out = [
        f"**{name}: batch composition** ({len(texts)} training rows, {len(set(labels))} classes, batch {BATCH}, "
        "one epoch, mean of seeds 42-44)",
        "",
        "| order | padding efficiency | classes per batch | majority classes in 4 consecutive steps |",
        "|---|---|---|---|",
    ]
    for order_name, stats in rows.items():
        eff, per_batch, span = (statistics.mean(s[i] for s in stats) for i in range(3))
        out.append(f"| {order_name} | {eff:.2f} | {per_batch:.1f} | {span:.2f} |")
    return out
