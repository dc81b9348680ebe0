"""Per-side cost facts for the speed ranking: measured where the run recorded them, else modelled.

Each fact comes with its basis ("measured" | "estimated") so the output never passes an estimate
off as a measurement. The cost model is deliberately small:

- computed tokens per sample = real tokens per sample / padding efficiency;
- cost per computed token = dense part (4h^2 + 2hI per layer: attention projections + MLP) plus
  attention scores (2Lh per layer), L = the row length the kernel sees, so attention grows with L^2
  per row;
- data wait: time per sample = compute time / (1 - data-wait share);
- precision and gradient checkpointing: fixed multipliers from facts measured on this kind of
  machine (docs/diff.md lists them).
"""

from __future__ import annotations

from statistics import mean
from typing import Any

from tunelab.diff.sides import Side, effective_batch, number, setup_value, summary_value

# Speed-up of 16-bit autocast over fp32, by device (facts.md: 1.4-1.8x on CPUs with native bf16).
BF16_SPEEDUP = {"cpu_native": 1.5, "cpu_emulated": 0.8, "cuda": 2.0}
CHECKPOINTING_COST = 4 / 3  # one extra forward per step


def measured_speed(side: Side) -> float | None:
    """Training samples/s of the optimizer steps themselves (evaluation and checkpointing excluded).

    From the recorded step time and data-wait share when the run has them; else the Trainer's
    whole-loop train_samples_per_second.
    """
    if not side.is_run:
        return None
    step, wait = summary_value(side, "step_time_s"), summary_value(side, "data_wait_share")
    if step and wait is not None and wait < 1:
        return effective_batch(side) / (step / (1 - wait))
    train = side.metrics.get("train") or {}
    return number(train.get("train_samples_per_second")) or number(side.info.get("samples_per_second"))


def batching(side: Side) -> str:
    """The batching strategy that ran (recorded at train start), or what `auto` would resolve to."""
    recorded = setup_value(side, "batching")
    if isinstance(recorded, str):
        return recorded
    requested = side.get("data.batching") or "auto"
    if requested != "auto":
        return str(requested)
    return "packed" if side.plan.get("varlen_attention") else "grouped"


def train_lengths(side: Side, other: Side | None = None) -> list[int]:
    """Untruncated token lengths of the training rows (this run's, else the other run's on the same data)."""
    for s in (side, other):
        has = s is not None and (s.lengths.get("lengths") or {}).get("train")
        if has and (s is side or same_train_data(side, s)):
            return [int(n) for n in s.lengths["lengths"]["train"]]
    return []


def same_train_data(a: Side, b: Side) -> bool:
    ha = ((a.manifest.get("files") or {}).get("train") or {}).get("sha256")
    hb = ((b.manifest.get("files") or {}).get("train") or {}).get("sha256")
    return bool(ha) and ha == hb


def comparable(side: Side, other: Side | None) -> bool:
    """Use measurements only when both sides have them: an estimate is compared with an estimate."""
    return side.is_run and (other is None or other.is_run)


def padding(side: Side, other: Side | None) -> tuple[float | None, str]:
    """(padding efficiency, basis): measured in training, else simulated on the token lengths."""
    measured = summary_value(side, "padding_efficiency")
    if measured and comparable(side, other) and (other is None or summary_value(other, "padding_efficiency")):
        return measured, "measured"
    strategy = batching(side)
    lengths = train_lengths(side, other)
    if lengths:
        from tunelab.diagnostics.lengths import padding_efficiency

        per_device = int(side.get("training.per_device_train_batch_size") or 1)
        eff = padding_efficiency(lengths, per_device, int(side.get("data.max_length") or max(lengths)))
        return eff.get(strategy), "estimated"
    return None, "unknown"


def real_tokens_per_sample(side: Side, other: Side | None) -> float | None:
    """Non-padding tokens per training sample: counted in training when both sides were trained
    (consistent with the measured padding efficiency), else from the token lengths."""
    last = next((r for r in reversed(side.records("train")) if number(r.get("tokens_seen"))), None)
    if last and last.get("step") and comparable(side, other):
        return float(last["tokens_seen"]) / (int(last["step"]) * effective_batch(side))
    lengths = train_lengths(side, other)
    limit = int(side.get("data.max_length") or 0)
    if lengths and limit:
        return mean(min(n, limit) for n in lengths)
    return None


def model_dims(side: Side) -> tuple[int, int, int] | None:
    """(hidden size, intermediate size, layers) from the model's config.json."""
    mc = side.model_config
    if not mc:
        return None
    h = mc.get("hidden_size") or mc.get("d_model") or mc.get("dim")
    layers = mc.get("num_hidden_layers") or mc.get("n_layer") or mc.get("encoder_layers")
    inter = mc.get("intermediate_size") or mc.get("encoder_ffn_dim") or (4 * h if h else None)
    if not (h and layers and inter):
        return None
    return int(h), int(inter), int(layers)


def sequence_cost(tokens: float, row_length: float, dims: tuple[int, int, int] | None) -> float:
    """Relative FLOPs of one sample: computed tokens x (dense + attention over the row length)."""
    if dims is None:
        return tokens
    h, inter, layers = dims
    return tokens * layers * (4 * h * h + 2 * h * inter + 2 * row_length * h)


def row_length(side: Side, computed_tokens: float) -> float:
    # A packed row holds the whole per-device batch; a padded row holds one sample.
    if batching(side) == "packed":
        return computed_tokens * int(side.get("training.per_device_train_batch_size") or 1)
    return computed_tokens


def data_wait(side: Side, other: Side | None) -> tuple[float | None, str]:
    """(data-wait share, basis): measured in training, else from the preflight loader probe."""
    measured = summary_value(side, "data_wait_share")
    both = other is None or summary_value(other, "data_wait_share") is not None
    if measured is not None and comparable(side, other) and both:
        return measured, "measured"
    workers = int(side.plan.get("dataloader_num_workers") or 0)
    for s in (side, other):
        probe = s.finding("pipeline.loader") if s is not None else None
        share = number(((probe or {}).get("evidence") or {}).get("loader_share_of_step"))
        if share is not None:
            # Without workers the main process loads every batch; with workers it overlaps compute.
            return (share / (1 + share) if workers == 0 else 0.0), "estimated"
    return None, "unknown"


def precision_multiplier(side: Side) -> float:
    """Relative time per token of this side's precision (fp32 = 1)."""
    precision = side.plan.get("precision") or side.get("runtime.precision")
    if precision not in ("bf16", "fp16"):
        return 1.0
    caps: dict[str, Any] = side.plan.get("capabilities") or {}
    if side.plan.get("device") == "cuda":
        return 1 / BF16_SPEEDUP["cuda"]
    return 1 / BF16_SPEEDUP["cpu_native" if caps.get("bf16_supported") else "cpu_emulated"]


def checkpointing_multiplier(side: Side) -> float:
    on = side.plan.get("gradient_checkpointing", side.get("training.gradient_checkpointing"))
    return CHECKPOINTING_COST if on else 1.0
