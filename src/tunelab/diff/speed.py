"""Why one run is faster: the measured ratio attributed to differences, multiplicatively.

time per sample = compute per sample / (1 - data-wait share), and compute per sample is modelled
as tokens x cost per token (cost.py). Each difference gets a factor = its cost on the slower
side / its cost on the faster side (> 1: it explains part of the gap; < 1: it works against it).
The product of the factors is what the differences explain; measured ratio / product is the
unexplained rest, reported as such, with the differing settings the model does not cover.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from tunelab.diff import cost
from tunelab.diff.sides import Side

# Settings that change speed but that the cost model does not quantify.
UNMODELLED = {
    "plan.device": "device",
    "plan.torch_compile": "torch_compile",
    "plan.attn_implementation": "attention implementation",
    "plan.liger_kernels": "Liger kernels",
    "training.optim": "optimizer implementation",
    "model.lora.enabled": "LoRA",
    "model.quantization.load_in_4bit": "4-bit quantization",
}
LOADER_KEYS = (
    "dataloader_num_workers",
    "dataloader_pin_memory",
    "dataloader_persistent_workers",
    "dataloader_prefetch_factor",
)


@dataclass
class Factor:
    key: str  # stable id: batching | data_wait | precision | gradient_checkpointing | model_size
    title: str  # what differs, e.g. "batching max_length vs grouped"
    factor: float  # slower side's cost / faster side's cost (what this difference explains)
    basis: str  # measured | estimated | scaled (modelled share of a measured compute ratio)
    why: str
    a: Any = None
    b: Any = None
    modelled: float | None = None  # the cost model's own factor, before scaling to the measurement


@dataclass
class SpeedReport:
    metric: str = "samples_per_s"
    a: float | None = None
    b: float | None = None
    basis: str = "measured"  # of the ratio: measured (both runs) | estimated (cost model)
    slower: str | None = None  # "A" | "B" | None (no difference)
    ratio: float | None = None  # faster / slower
    factors: list[Factor] = field(default_factory=list)
    explained: float = 1.0
    unexplained: float | None = None
    not_modelled: list[str] = field(default_factory=list)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_speed(a: Side, b: Side) -> SpeedReport:
    rep = SpeedReport(a=cost.measured_speed(a), b=cost.measured_speed(b))
    if rep.a and rep.b:
        rep.slower = "A" if rep.a < rep.b else "B"
        rep.ratio = max(rep.a, rep.b) / min(rep.a, rep.b)
    ref = cost.model_dims(a) or cost.model_dims(b)  # one model for the token factor: tokens only
    costs_a, costs_b = _side_costs(a, b, ref), _side_costs(b, a, ref)
    if rep.slower is None:  # no measurement on one side: the cost model decides which is slower
        rep.basis = "estimated"
        total_a = math.prod(c.mult for c in costs_a.values())
        total_b = math.prod(c.mult for c in costs_b.values())
        rep.ratio = max(total_a, total_b) / min(total_a, total_b)
        if rep.ratio > 1.0001:  # equal cost: no side is slower
            rep.slower = "A" if total_a > total_b else "B"
    slow, fast = (costs_b, costs_a) if rep.slower == "B" else (costs_a, costs_b)
    for key, s in slow.items():
        f = fast.get(key)
        if f is None or abs(math.log(s.mult / f.mult)) < 0.01:
            continue
        ca, cb = costs_a[key], costs_b[key]
        rep.factors.append(
            Factor(
                key=key,
                title=_title(key, a, b),
                factor=s.mult / f.mult,
                basis="measured" if s.basis == f.basis == "measured" else "estimated",
                why=_why(key, ca.shown, cb.shown, attention=ref is not None),
                a=ca.shown,
                b=cb.shown,
            )
        )
    rep.factors.sort(key=lambda f: -abs(math.log(f.factor)))
    _scale_to_measurement(rep)
    rep.explained = math.prod(f.factor for f in rep.factors)
    rep.not_modelled = _unmodelled(a, b)
    _finish(rep)
    return rep


@dataclass
class SideCost:
    mult: float  # relative time per sample this aspect costs on one side
    basis: str
    shown: Any  # the facts printed in the A / B columns


def _side_costs(side: Side, other: Side, dims: tuple[int, int, int] | None) -> dict[str, SideCost]:
    """Cost multipliers of one side by factor key; `dims`: the one model both sides are costed on."""
    out: dict[str, SideCost] = {}
    eff, eff_basis = cost.padding(side, other)
    real = cost.real_tokens_per_sample(side, other)
    computed = real / eff if eff and real else None
    if computed:
        length = cost.row_length(side, computed)
        shown = {
            "batching": cost.batching(side),
            "padding_efficiency": round(eff or 0, 3),
            "padding_basis": eff_basis,
            "tokens": round(computed, 1),
        }
        # Padding may be measured, but its cost in time is modelled: the factor is an estimate.
        out["batching"] = SideCost(cost.sequence_cost(computed, length, dims), "estimated", shown)
        own, theirs = cost.model_dims(side), cost.model_dims(other)
        if own and theirs and own != theirs and dims:
            ratio = cost.sequence_cost(computed, length, own) / cost.sequence_cost(computed, length, dims)
            out["model_size"] = SideCost(
                ratio, "estimated", {"hidden": own[0], "intermediate": own[1], "layers": own[2]}
            )
    wait, wait_basis = cost.data_wait(side, other)
    if wait is not None and wait < 1:
        shown = {"data_wait_share": round(wait, 3), "workers": side.plan.get("dataloader_num_workers")}
        out["data_wait"] = SideCost(1 / (1 - wait), wait_basis, shown)
    precision = side.plan.get("precision") or side.get("runtime.precision")
    out["precision"] = SideCost(cost.precision_multiplier(side), "estimated", precision)
    checkpointing = bool(side.plan.get("gradient_checkpointing", side.get("training.gradient_checkpointing")))
    out["gradient_checkpointing"] = SideCost(cost.checkpointing_multiplier(side), "estimated", checkpointing)
    return out


def _why(key: str, x: Any, y: Any, attention: bool) -> str:
    """Why a factor costs what it does (the A and B columns hold the facts)."""
    if key == "batching":
        return (
            f"{x['tokens']:.0f} vs {y['tokens']:.0f} tokens computed per sample (real tokens / padding efficiency)"
            + ("; attention cost grows with row length squared" if attention else "")
        )
    if key == "data_wait":
        return "time per sample = compute time / (1 - data-wait share)"
    if key == "precision":
        return "16-bit autocast speed-up for this device class, see docs/diff.md"
    if key == "gradient_checkpointing":
        return "recomputes the forward pass in backward (~1/3 more compute)"
    return f"model FLOPs per token (hidden x layers {x['hidden']}x{x['layers']} vs {y['hidden']}x{y['layers']})"


def _title(key: str, a: Side, b: Side) -> str:
    def pair(x: Any, y: Any) -> str:
        return f"{x} vs {y}"

    if key == "batching":
        parts = []
        if cost.batching(a) != cost.batching(b):
            parts.append(f"batching {pair(cost.batching(a), cost.batching(b))}")
        for k in ("training.per_device_train_batch_size", "data.max_length"):
            if a.get(k) != b.get(k):
                parts.append(f"{k.split('.')[-1]} {pair(a.get(k), b.get(k))}")
        if not cost.same_train_data(a, b):
            parts.append("different training data")
        return ", ".join(parts) or "padding (same batching settings)"
    if key == "data_wait":
        diffs = [f"{k} {pair(a.plan.get(k), b.plan.get(k))}" for k in LOADER_KEYS if a.plan.get(k) != b.plan.get(k)]
        # persistent workers and prefetch follow from the worker count: name the root cause only
        return diffs[0] if diffs else "data wait (same loader settings)"
    if key == "precision":
        return f"precision {pair(a.plan.get('precision'), b.plan.get('precision'))}"
    if key == "gradient_checkpointing":
        return f"gradient_checkpointing {pair(a.plan.get(key), b.plan.get(key))}"
    return "model size"


def _unmodelled(a: Side, b: Side) -> list[str]:
    out = []
    for dotted, name in UNMODELLED.items():
        section, _, rest = dotted.partition(".")
        va = a.plan.get(rest) if section == "plan" else a.get(dotted)
        vb = b.plan.get(rest) if section == "plan" else b.get(dotted)
        if va != vb:
            out.append(f"{name} {va} vs {vb}")
    return out


def _scale_to_measurement(rep: SpeedReport) -> None:
    """Fit modelled compute factors to the measured compute ratio when the model over-predicts.

    Data wait is measured exactly, so compute ratio = measured ratio / wait factor is a
    measurement too. FLOP counts over-predict on small models (fixed per-step costs do not scale
    with tokens): the modelled factors then keep their relative sizes but are scaled (in log
    space) so that together they explain the measured compute ratio, not more.
    """
    if rep.basis != "measured" or not rep.ratio:
        return
    wait = next((f for f in rep.factors if f.key == "data_wait" and f.basis == "measured"), None)
    compute = [f for f in rep.factors if f.key != "data_wait"]
    measured_compute = rep.ratio / (wait.factor if wait else 1.0)
    modelled = math.prod(f.factor for f in compute)
    if not compute or any(f.factor < 1 for f in compute) or not (1 < measured_compute < modelled):
        return
    k = math.log(measured_compute) / math.log(modelled)
    for f in compute:
        f.modelled, f.factor, f.basis = f.factor, f.factor**k, "scaled"
    rep.note = (
        f"the cost model predicts {modelled:.2f}x for compute but {measured_compute:.2f}x was measured "
        "(per-step overheads that do not scale with tokens); modelled factors scaled to the measurement"
    )
    rep.factors.sort(key=lambda f: -abs(math.log(f.factor)))


def _finish(rep: SpeedReport) -> None:
    if rep.basis == "measured" and rep.ratio:
        rep.unexplained = rep.ratio / rep.explained
    rest = rep.unexplained
    if rep.note:  # set by the scaling step
        return
    extra = f"; not modelled: {', '.join(rep.not_modelled)}" if rep.not_modelled else ""
    if rest is None:
        rep.note = "estimated from the cost model (one side has no measurements)" + extra
    elif rest > 1.15:
        rep.note = f"~{rest:.2f}x is not explained by the recorded differences{extra or ' (noise, machine load)'}"
    elif rest < 1 / 1.15:
        rep.note = (
            f"the cost model predicts {1 / rest:.2f}x more than was measured: per-step overheads that do not "
            f"scale with tokens (small models, small batches) absorb part of it{extra}"
        )
    else:
        rep.note = "the differences account for the measured ratio (within 15%)" + extra
