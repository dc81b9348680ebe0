"""Check 9, schedule: warmup as a share of the run, and the learning rate the scheduler actually
gives in the first steps (the seed run sat at lr 2.8e-7 on step 20 of a 700-step warmup while its
loss exploded: the schedule hid the real fault and wasted the first hundreds of steps).

The lr values come from transformers' own `get_scheduler` stepped on a dummy optimizer, so they
are exactly what the Trainer will use.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

from tunelab.diagnostics.context import CheckContext
from tunelab.diagnostics.findings import Finding, info, warning

EARLY_STEP = 20  # the step at which the lr is judged
EARLY_MIN_SHARE = 0.05  # lr below 5% of peak at EARLY_STEP...
LONG_WARMUP = 100  # ...with a warmup this long: the first hundreds of steps barely train
WARMUP_SHARE_WARN = 0.25


def total_steps(ctx: CheckContext) -> int | None:
    t = ctx.cfg.training
    if t.max_steps and t.max_steps > 0:
        return int(t.max_steps)
    if ctx.train_dataset is None:
        return None
    world = int((ctx.plan.capabilities or {}).get("world_size", 1)) if ctx.plan else 1
    per_step = t.per_device_train_batch_size * t.gradient_accumulation_steps * max(1, world)
    return max(1, math.ceil(len(ctx.train_dataset) / per_step * t.num_train_epochs))


def warmup_steps(value: float, total: int) -> int:
    """transformers 5: a float below 1 is a ratio of the total steps."""
    return math.ceil(value * total) if value < 1 else int(value)


def lr_curve(name: str, peak: float, warmup: int, total: int, steps: int) -> list[float]:
    """lr used by optimizer steps 1..steps (what the Trainer logs as learning_rate)."""
    import torch
    from transformers import get_scheduler

    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=peak)
    sched = get_scheduler(name, opt, num_warmup_steps=warmup, num_training_steps=total)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(steps):
            out.append(float(opt.param_groups[0]["lr"]))
            opt.step()
            sched.step()
    return out


def check_schedule(ctx: CheckContext) -> list[Finding]:
    t = ctx.cfg.training
    total = total_steps(ctx)
    if total is None:
        return []
    warm = warmup_steps(t.warmup_steps, total)
    horizon = min(total, max(EARLY_STEP, 100, min(warm + 1, 5000)))
    try:
        lrs = lr_curve(t.lr_scheduler_type, t.learning_rate, warm, total, horizon)
    except (ValueError, KeyError) as exc:
        return [
            warning(
                "schedule.unknown",
                f"scheduler {t.lr_scheduler_type!r} could not be built: {exc}",
                "use a transformers SchedulerType name (linear, cosine, constant_with_warmup, ...)",
            )
        ]
    peak = t.learning_rate
    at = {s: lrs[s - 1] for s in (1, 10, EARLY_STEP, 100) if s <= len(lrs)}
    to_10 = next((i + 1 for i, v in enumerate(lrs) if v >= 0.1 * peak), None)
    ev: dict[str, Any] = dict(
        total_steps=total,
        warmup_steps=warm,
        warmup_share=round(warm / total, 4),
        peak_lr=peak,
        scheduler=t.lr_scheduler_type,
        steps_to_10pct_of_peak=to_10,
    )
    ev |= {f"lr_at_step_{s}": v for s, v in at.items()}
    out: list[Finding] = []
    early = at.get(EARLY_STEP)
    if early is not None and warm >= LONG_WARMUP and early < EARLY_MIN_SHARE * peak:
        out.append(
            warning(
                "schedule.early_lr",
                f"lr is {early:.2g} at step {EARLY_STEP} ({early / peak:.1%} of peak) under a "
                f"{warm}-step warmup: the first hundreds of steps barely move the weights, and a diverging loss "
                "there is not the lr's fault",
                f"shorten the warmup: training.warmup_steps: {min(0.06, 100 / total):.3g} "
                "(a ratio) or a few dozen steps",
                **ev,
            )
        )
    if warm >= total:
        out.append(
            warning(
                "schedule.warmup_share",
                f"warmup ({warm} steps) is at least the whole run ({total}): the peak lr is never reached",
                "lower training.warmup_steps (e.g. 0.06 of total)",
                **ev,
            )
        )
    elif warm / total > WARMUP_SHARE_WARN:
        out.append(
            warning(
                "schedule.warmup_share",
                f"warmup is {warm / total:.0%} of the run",
                "use 3-10% warmup (training.warmup_steps: 0.06)",
                **ev,
            )
        )
    if not out:
        out.append(
            info(
                "schedule.plan",
                f"{total} steps, warmup {warm} ({warm / total:.1%}); lr at step {min(EARLY_STEP, total)} "
                f"{lrs[min(EARLY_STEP, total) - 1]:.3g}",
                **ev,
            )
        )
    return out
