"""Check 3, lengths: token-length distribution, truncation at max_length (inputs and targets), and
the padding waste each batching strategy would have on these exact lengths and batch size.

The waste simulation mirrors the samplers: `dynamic` pads each shuffled batch to its longest
row, `grouped` sorts mega-batches of 50 batches by length (transformers' LengthGroupedSampler),
`bucketed` sorts windows of data/batching.BUCKET_WINDOW batches,
`packed` fills rows of max_length greedily in order.
"""

from __future__ import annotations

import random
from typing import Any

from tunelab.data.batching import BUCKET_WINDOW
from tunelab.diagnostics.context import CheckContext
from tunelab.diagnostics.findings import Finding, info, warning

TRUNCATION_WARN = 0.05  # more than 5% of rows cut at max_length: information is lost
WASTE_WARN = 0.5  # configured strategy spends over half its tokens on padding...
BETTER_BY = 0.3  # ...while another strategy would be this much more efficient
MEGABATCH_MULT = 50  # transformers' LengthGroupedSampler mega-batch size, in batches


def check_lengths(ctx: CheckContext) -> list[Finding]:
    ids = ctx.column("input_ids")
    if not ids:
        return []
    lengths = [len(r) for r in ids]
    max_len = ctx.cfg.data.max_length
    # data/tokenize.py records each row's length before truncation: exact truncation counts.
    full = ctx.column("untruncated_length")
    out = [_distribution(lengths, max_len, "inputs", "data.max_length", full)]
    target_max = ctx.cfg.task.target_token_limit()
    labels = ctx.column("labels")
    if target_max and labels and isinstance(labels[0], (list, tuple)):
        targets = [sum(1 for v in r if v != -100) for r in labels]
        out.append(_distribution(targets, target_max, "targets", "task.max_target_length"))
    out.append(_waste(ctx, lengths, max_len))
    return out


def _percentile(values: list[int], q: float) -> int:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]


def _distribution(lengths: list[int], limit: int, what: str, key: str, full: list[int] | None = None) -> Finding:
    """`full`: lengths before truncation when known; else a row at the limit counts as truncated."""
    truncated = (sum(v > limit for v in full) if full else sum(v >= limit for v in lengths)) / len(lengths)
    ev = dict(
        rows=len(lengths),
        min=min(lengths),
        p50=_percentile(lengths, 0.5),
        p90=_percentile(lengths, 0.9),
        p99=_percentile(lengths, 0.99),
        max=max(lengths),
        limit=limit,
        truncated_share=round(truncated, 4),
    )
    if full:  # the real tail, not the one cut at the limit: what the limit would have to be
        ev["p99_untruncated"], ev["max_untruncated"] = _percentile(full, 0.99), max(full)
    fid = f"lengths.truncation_{what}"
    if truncated > TRUNCATION_WARN:
        p99 = f"{ev['p99_untruncated']} before truncation" if full else f"{ev['p99']}, capped at the limit"
        return warning(
            fid,
            f"{truncated:.1%} of {what} reach {key}={limit} and are truncated",
            f"raise {key} (p99 is {p99}), or accept the loss of their tails",
            **ev,
        )
    return info(fid, f"{what}: median {ev['p50']} tokens, {truncated:.1%} truncated at {limit}", **ev)


def padding_efficiency(lengths: list[int], batch_size: int, max_length: int, seed: int = 0) -> dict[str, float]:
    """Real tokens / tokens computed for each batching strategy (1.0 = no padding)."""
    lengths = [min(n, max_length) for n in lengths]  # what survives truncation
    total = sum(lengths)
    order = list(range(len(lengths)))
    random.Random(seed).shuffle(order)
    shuffled = [lengths[i] for i in order]

    def padded(batches: list[list[int]]) -> int:
        return sum(max(b) * len(b) for b in batches if b)

    def sorted_windows(span: int) -> list[list[int]]:
        """Batches cut from length-sorted windows of `span` rows (batch order is irrelevant here)."""
        out: list[list[int]] = []
        for i in range(0, len(shuffled), span):
            chunk = sorted(shuffled[i : i + span], reverse=True)
            out += [chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size)]
        return out

    dynamic = [shuffled[i : i + batch_size] for i in range(0, len(shuffled), batch_size)]
    grouped = sorted_windows(batch_size * MEGABATCH_MULT)  # transformers' mega-batches
    bucketed = sorted_windows(batch_size * BUCKET_WINDOW)  # data/batching.BucketedSampler's windows
    rows, fill = 0, max_length
    for n in shuffled:
        if fill + n > max_length:
            rows, fill = rows + 1, 0
        fill += n
    return {
        "max_length": total / (len(lengths) * max_length),
        "dynamic": total / padded(dynamic),
        "grouped": total / padded(grouped),
        "bucketed": total / padded(bucketed),
        "packed": total / (rows * max_length) if rows else 1.0,
    }


def _waste(ctx: CheckContext, lengths: list[int], max_len: int) -> Finding:
    bs = ctx.cfg.training.per_device_train_batch_size
    eff = {k: round(v, 3) for k, v in padding_efficiency(lengths, bs, max_len).items()}
    configured = ctx.cfg.data.batching
    ev: dict[str, Any] = {f"efficiency_{k}": v for k, v in eff.items()} | {"batching": configured, "batch_size": bs}
    best = max(eff, key=lambda k: eff[k])
    if configured in eff and eff[configured] < WASTE_WARN and eff[best] - eff[configured] > BETTER_BY:
        return warning(
            "lengths.padding_waste",
            f"batching {configured} computes {1 - eff[configured]:.0%} padding; {best} would waste {1 - eff[best]:.0%}",
            f"set data.batching: {best}",
            **ev,
        )
    return info(
        "lengths.padding_waste",
        "padding waste per strategy: " + ", ".join(f"{k} {1 - v:.0%}" for k, v in eff.items()),
        **ev,
    )
