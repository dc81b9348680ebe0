"""Check: are the labels tied to length while batches are grouped by length?

Length-grouped batching puts rows of one length in a batch. Where length tells the class (news
sources with house styles, plot synopses next to short reviews), each batch then holds about one
class, and transformers' grouped sampler walks each mega-batch from long to short, so runs of
steps see one class. The quality benchmark (benchmarks/bench_quality.py, docs/benchmarks.md)
measured that below random order on average on real data; `bucketed` (what `auto` picks without
a varlen kernel) shuffles the batch order and came within a point of random order.

How strongly length tells the label: the correlation ratio eta^2 of token length by class (the
share of the length variance explained by the class; 0 = unrelated, 1 = length decides it).
"""

from __future__ import annotations

from typing import Any

from tunelab.diagnostics.context import CheckContext
from tunelab.diagnostics.findings import Finding, info, warning

ETA2_WARN = 0.25  # a quarter of the length variance is the class: "strongly tied"
# The numbers behind this sentence: the quality benchmark in docs/benchmarks.md.
CONSEQUENCE = (
    "each batch then holds about one class and runs of steps follow one class; on real data like this "
    "transformers' grouped order scored below random order in accuracy and macro-F1 on average "
    "(docs/benchmarks.md, quality benchmark)"
)


def length_label_eta2(lengths: list[int], labels: list[Any]) -> float:
    """Correlation ratio: between-class variance of `lengths` over their total variance."""
    n = len(lengths)
    mean = sum(lengths) / n
    total = sum((v - mean) ** 2 for v in lengths)
    if not total:
        return 0.0
    groups: dict[Any, list[int]] = {}
    for v, y in zip(lengths, labels):
        groups.setdefault(y, []).append(v)
    between = sum(len(g) * (sum(g) / len(g) - mean) ** 2 for g in groups.values())
    return between / total


def check_length_labels(ctx: CheckContext) -> list[Finding]:
    if ctx.kind != "classification":
        return []
    ids, labels = ctx.column("input_ids"), ctx.column("labels")
    if not ids or not labels or len(ids) != len(labels) or isinstance(labels[0], (list, tuple)):
        return []
    eta2 = round(length_label_eta2([len(r) for r in ids], labels), 3)
    strategy = _strategy(ctx)
    ev = {"eta2": eta2, "batching": ctx.cfg.data.batching, "resolved": strategy}
    if eta2 >= ETA2_WARN and strategy == "grouped":
        return [
            warning(
                "lengths.label_tied_grouping",
                f"labels are strongly tied to length (eta^2 {eta2:.2f}) and batches are grouped by length: {CONSEQUENCE}",
                "set data.batching: bucketed or auto (length-sorted batches in shuffled order: the same speed, "
                "random order's accuracy in the benchmark); dynamic is random order, slower",
                **ev,
            )
        ]
    return [info("lengths.label_tied_grouping", f"length explains {eta2:.0%} of the label (eta^2)", **ev)]


def _strategy(ctx: CheckContext) -> str:
    if ctx.cfg.data.batching != "auto" or ctx.plan is None:
        return ctx.cfg.data.batching
    from tunelab.data.batching import resolve_strategy

    return resolve_strategy(ctx.cfg, ctx.plan, ctx.model)[0]
