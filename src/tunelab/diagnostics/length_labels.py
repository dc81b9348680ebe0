"""Check: are the labels tied to length while batches are grouped by length?

Length-grouped batching puts rows of one length in a batch. Where length tells the class (news
sources with house styles, plot synopses next to short reviews), each batch then holds fewer
classes, and transformers' grouped sampler walks each mega-batch from long to short, so runs of
steps see one class. The quality benchmark (benchmarks/bench_quality.py, docs/benchmarks.md)
measured both length-sorted orders below random order on such data, beyond the seeds' spread:
`grouped` by 5 points of accuracy, `bucketed` (shuffled batch order) by 3. `auto` is random order
without a varlen kernel, so this warns only when a user chose one of them.

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
    "each batch then holds fewer classes; on real data like this length-sorted batches scored below random "
    "order beyond the spread of 3 seeds (accuracy -5 points grouped, -3 bucketed; docs/benchmarks.md, "
    "quality benchmark)"
)
SORTED = ("grouped", "bucketed")


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
    if eta2 >= ETA2_WARN and strategy in SORTED:
        return [
            warning(
                "lengths.label_tied_grouping",
                f"labels are strongly tied to length (eta^2 {eta2:.2f}) and batches are sorted by length "
                f"({strategy}): {CONSEQUENCE}",
                "set data.batching: auto or dynamic (random order, dynamic padding); on a GPU with flash-attn, "
                "auto packs decoder rows in random order, which is fast without this bias",
                **ev,
            )
        ]
    return [info("lengths.label_tied_grouping", f"length explains {eta2:.0%} of the label (eta^2)", **ev)]


def _strategy(ctx: CheckContext) -> str:
    if ctx.cfg.data.batching != "auto" or ctx.plan is None:
        return ctx.cfg.data.batching
    from tunelab.data.batching import resolve_strategy

    return resolve_strategy(ctx.cfg, ctx.plan, ctx.model)[0]
