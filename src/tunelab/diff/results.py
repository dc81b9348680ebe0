"""Why two runs reach different results: the differences known to move a metric, ranked.

Each explanation carries a weight (0-3) for ranking: 3 = changes what the model learns from
(data, labels, learning rate actually applied), 2 = likely to matter (initialisation, truncation,
preflight warnings), 1 = a hyperparameter that differs. The metric gap itself (with its per-class
breakdown) comes first as the thing being explained.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from tunelab.diff.sides import Side, number

LR_STEPS = (1, 20, 100, 500, 1000, 5000, 10000)
SCHEDULE_KEYS = ("training.learning_rate", "training.warmup_steps", "training.lr_scheduler_type")
HYPER_KEYS = (
    "training.learning_rate",
    "training.per_device_train_batch_size",
    "training.gradient_accumulation_steps",
    "training.num_train_epochs",
    "training.max_steps",
    "training.weight_decay",
    "training.max_grad_norm",
    "training.seed",
    "task.label_smoothing",
    "task.class_weights",
    "model.lora.enabled",
    "model.lora.r",
)


@dataclass
class Explanation:
    key: str
    title: str
    why: str
    weight: float
    a: Any = None
    b: Any = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_results(a: Side, b: Side) -> tuple[dict[str, Any] | None, list[Explanation]]:
    """(metric gap or None, explanations ranked by weight)."""
    items: list[Explanation] = []
    for check in (_lr, _initial_loss, _head_init, _labels, _data, _split, _truncation, _pad_token, _preflight):
        items.extend(check(a, b))
    covered = {i.key for i in items}
    if "learning_rate_schedule" in covered:
        covered.update(SCHEDULE_KEYS)
    items.extend(_hyper(a, b, covered))
    items.sort(key=lambda e: -e.weight)
    return _metric_gap(a, b), items


# ------------------------------------------------------------------------------------ metric gap
def _metric_gap(a: Side, b: Side) -> dict[str, Any] | None:
    name = a.metrics.get("primary_metric") or b.metrics.get("primary_metric")
    va = number((a.metrics.get("validation") or {}).get(name))
    vb = number((b.metrics.get("validation") or {}).get(name))
    if not name or va is None or vb is None:
        return None
    per_a, per_b = a.metrics.get("validation_per_class") or {}, b.metrics.get("validation_per_class") or {}
    classes = []
    for cls in sorted(set(per_a) | set(per_b)):
        fa, fb = number((per_a.get(cls) or {}).get("f1")), number((per_b.get(cls) or {}).get("f1"))
        if fa is not None and fb is not None and abs(fa - fb) >= 0.01:
            classes.append({"class": cls, "a": round(fa, 4), "b": round(fb, 4), "delta": round(fb - fa, 4)})
    classes.sort(key=lambda c: -abs(c["delta"]))
    return {"metric": name, "a": va, "b": vb, "delta": vb - va, "per_class_f1": classes}


# --------------------------------------------------------------------------------- learning rate
def lr_at(side: Side, step: int, other: Side | None = None) -> float | None:
    """The lr the run logged at `step` (nearest logged step at or before it); for a config, the lr
    transformers' scheduler will give it (total steps from the other run's training rows)."""
    rows = [r for r in side.records("train") if number(r.get("learning_rate")) is not None]
    if rows:
        before = [r for r in rows if int(r.get("step", 0)) <= step]
        return number(before[-1]["learning_rate"]) if before and before[-1]["step"] >= step * 0.8 else None
    curve = _modelled_lr(side, other, step) if other is not None and not side.is_run else None
    return curve[step - 1] if curve else None


def _modelled_lr(side: Side, other: Side, steps: int) -> list[float] | None:
    from tunelab.diagnostics.schedule import lr_curve, warmup_steps
    from tunelab.diff.sides import effective_batch

    t = side.config.get("training") or {}
    rows = (other.manifest.get("rows") or {}).get("train")
    if t.get("max_steps", -1) > 0:
        total = int(t["max_steps"])
    elif rows:
        total = max(1, math.ceil(rows / effective_batch(side) * float(t.get("num_train_epochs", 1))))
    else:
        return None
    warm = warmup_steps(float(t.get("warmup_steps", 0)), total)
    return lr_curve(str(t.get("lr_scheduler_type", "linear")), float(t["learning_rate"]), warm, total, steps)


def _lr(a: Side, b: Side) -> list[Explanation]:
    ends = [_last_step(x) for x in (a, b) if x.is_run]
    last = min(ends) if ends else 0
    steps = [s for s in LR_STEPS if s <= last] or ([last] if last else [])
    diffs = []
    for s in steps:
        la, lb = lr_at(a, s, b), lr_at(b, s, a)
        if la is not None and lb is not None and not math.isclose(la, lb, rel_tol=0.05, abs_tol=1e-12):
            diffs.append((s, la, lb))
    if not diffs:
        return []
    causes = [f"{k.split('.')[-1]} {_v(a.get(k))} vs {_v(b.get(k))}" for k in SCHEDULE_KEYS if a.get(k) != b.get(k)]
    shown = "; ".join(f"step {s}: {la:.3g} vs {lb:.3g}" for s, la, lb in diffs[:4])
    worst = max(abs(math.log(max(la, 1e-20) / max(lb, 1e-20))) for _, la, lb in diffs)
    return [
        Explanation(
            key="learning_rate_schedule",
            title=", ".join(causes) or "learning rate actually applied differs",
            why=f"lr actually applied at {shown}",
            weight=3 if worst > math.log(2) else 2,
            a={s: la for s, la, _ in diffs},
            b={s: lb for s, _, lb in diffs},
        )
    ]


def _last_step(side: Side) -> int:
    steps = [int(r.get("step", 0)) for r in side.records("train")]
    return max(steps) if steps else 0


# --------------------------------------------------------------------------- init, labels, data
def _initial_loss(a: Side, b: Side) -> list[Explanation]:
    ea = (a.finding("loss.initial") or {}).get("evidence") or {}
    eb = (b.finding("loss.initial") or {}).get("evidence") or {}
    ra, rb = number(ea.get("ratio")), number(eb.get("ratio"))
    if ra is None or rb is None or abs(ra - rb) < 0.1:
        return []
    return [
        Explanation(
            key="initial_loss",
            title=f"initial loss {ea.get('loss')} vs {eb.get('loss')} (ln C = {ea.get('ln_num_classes')})",
            why=f"initial loss / ln(C) {ra:.2f} vs {rb:.2f}: far above 1 means an over-confident random head",
            weight=3 if max(ra, rb) > 1.5 else 2,
            a=ra,
            b=rb,
        )
    ]


def _head_init(a: Side, b: Side) -> list[Explanation]:
    ka, kb = a.get("model.head_init_std"), b.get("model.head_init_std")
    sa = ((a.finding("loss.initial") or {}).get("evidence") or {}).get("head_weight_std")
    sb = ((b.finding("loss.initial") or {}).get("evidence") or {}).get("head_weight_std")
    if ka == kb and (sa is None or sb is None or math.isclose(sa, sb, rel_tol=0.2)):
        return []
    return [
        Explanation(
            key="head_init",
            title=f"head_init_std {ka} vs {kb}",
            why=f"classification head weight std at start {sa} vs {sb}",
            weight=2,
            a=sa,
            b=sb,
        )
    ]


def _labels(a: Side, b: Side) -> list[Explanation]:
    la, lb = a.manifest.get("label_names"), b.manifest.get("label_names")
    if not la or not lb or la == lb:
        return []
    only_a, only_b = sorted(set(la) - set(lb)), sorted(set(lb) - set(la))
    why = (
        f"labels only in A: {only_a[:5]}; only in B: {only_b[:5]}"
        if only_a or only_b
        else "same labels in a different order: class ids (and saved heads) do not correspond"
    )
    return [Explanation(key="label_map", title="label maps differ", why=why, weight=3, a=la, b=lb)]


def _data(a: Side, b: Side) -> list[Explanation]:
    out = []
    fa, fb = a.manifest.get("files") or {}, b.manifest.get("files") or {}
    for split in sorted(set(fa) | set(fb)):
        ha, hb = (fa.get(split) or {}).get("sha256"), (fb.get(split) or {}).get("sha256")
        if ha != hb:
            ra, rb = (fa.get(split) or {}).get("rows"), (fb.get(split) or {}).get("rows")
            rows = f"; rows {ra} vs {rb}" if ra != rb else ""
            out.append(
                Explanation(
                    key=f"data.{split}_file",
                    title=f"{split} data differs (sha256 {str(ha)[:12]} vs {str(hb)[:12]})",
                    why=f"different {split} file content{rows}",
                    weight=3,
                    a=ha,
                    b=hb,
                )
            )
    leak_a, leak_b = _leakage(a), _leakage(b)
    known = "warnings" in a.manifest and "warnings" in b.manifest  # a config side has no split yet
    if known and leak_a != leak_b:
        out.append(
            Explanation(
                key="data.leakage",
                title=f"leaked rows {leak_a} vs {leak_b}",
                why="rows shared between train and validation/test inflate the score of the leakier run",
                weight=2,
                a=leak_a,
                b=leak_b,
            )
        )
    return out


def _leakage(side: Side) -> int:
    import re

    total = 0
    for w in side.manifest.get("warnings") or []:
        m = re.match(r"leakage: (\d+)", str(w))
        total += int(m.group(1)) if m else 0
    return total


def _split(a: Side, b: Side) -> list[Explanation]:
    sa, sb = a.manifest.get("split") or {}, b.manifest.get("split") or {}
    ra, rb = a.manifest.get("rows") or {}, b.manifest.get("rows") or {}
    if not (sa and sb) or (sa == sb and ra == rb):
        return []
    keys = [f"{k} {sa.get(k)} vs {sb.get(k)}" for k in sorted(set(sa) | set(sb)) if sa.get(k) != sb.get(k)]
    rows = [f"{k} rows {ra.get(k)} vs {rb.get(k)}" for k in sorted(set(ra) | set(rb)) if ra.get(k) != rb.get(k)]
    return [
        Explanation(
            key="data.split",
            title="train/validation split differs",
            why="; ".join(keys + rows) + ": the runs are scored on different validation rows",
            weight=3,
            a={"split": sa, "rows": ra},
            b={"split": sb, "rows": rb},
        )
    ]


def _truncation(a: Side, b: Side) -> list[Explanation]:
    out = []
    for split in ("train", "validation"):
        ta = number((((a.lengths.get("stats") or {}).get(split)) or {}).get("truncation_rate"))
        tb = number((((b.lengths.get("stats") or {}).get(split)) or {}).get("truncation_rate"))
        if ta is None or tb is None or abs(ta - tb) < 0.005:
            continue
        out.append(
            Explanation(
                key=f"truncation.{split}",
                title=f"{split} rows truncated {100 * ta:.1f}% vs {100 * tb:.1f}%",
                why=f"max_length {a.get('data.max_length')} vs {b.get('data.max_length')}: truncated rows lose their tail",
                weight=2 if max(ta, tb) > 0.05 else 1,
                a=ta,
                b=tb,
            )
        )
    return out


def _pad_token(a: Side, b: Side) -> list[Explanation]:
    pa, pb = a.get("model.pad_token"), b.get("model.pad_token")
    if pa == pb:
        return []
    return [
        Explanation(
            key="model.pad_token",
            title=f"pad_token {pa} vs {pb}",
            why="the pad policy decides which token a decoder classifier pools",
            weight=2,
            a=pa,
            b=pb,
        )
    ]


# Findings about speed or memory, not about what is learned (the speed ranking covers those).
SPEED_FINDINGS = ("lengths.padding_waste", "pipeline.", "memory.", "precision.", "batching.")


def _preflight(a: Side, b: Side) -> list[Explanation]:
    def bad(side: Side) -> dict[str, str]:
        return {
            f["id"]: f.get("title", "")
            for f in side.findings
            if f.get("severity") in ("warning", "error") and not str(f.get("id", "")).startswith(SPEED_FINDINGS)
        }

    if not (a.findings and b.findings):  # a config (or a run with doctor off) has no findings
        return []
    wa, wb = bad(a), bad(b)
    out = []
    for fid in sorted(set(wa) ^ set(wb)):
        side = "A" if fid in wa else "B"
        out.append(
            Explanation(
                key=f"preflight.{fid}",
                title=f"preflight {fid} only in {side}",
                why=(wa.get(fid) or wb.get(fid) or "")[:160],
                weight=2,
                a=fid in wa,
                b=fid in wb,
            )
        )
    return out


def _hyper(a: Side, b: Side, covered: set[str]) -> list[Explanation]:
    out = []
    for key in HYPER_KEYS:
        if key in covered or a.get(key) == b.get(key):
            continue
        out.append(
            Explanation(
                key=key,
                title=f"{key.split('.')[-1]} {a.get(key)} vs {b.get(key)}",
                why=key,
                weight=1,
                a=a.get(key),
                b=b.get(key),
            )
        )
    return out


def _v(value: Any) -> Any:
    """700.0 -> 700 in titles (pydantic floats for whole step counts)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value
