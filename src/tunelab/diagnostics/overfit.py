"""Check 6 (opt-in, `doctor --overfit`): memorise one small batch.

Any model that can learn at all drives the loss on a single batch of a few samples close to zero
in a few dozen steps. If it cannot, the fault is in what it is asked to learn (labels shuffled
against inputs, every target masked to -100) or in the optimisation (lr, frozen parameters),
not in the data size. Runs on a deep copy with a fresh AdamW so the real model is untouched.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from tunelab.diagnostics.batches import autocast, model_device, sample_batches, to_device
from tunelab.diagnostics.context import CheckContext
from tunelab.diagnostics.findings import Finding, error, info, warning

OVERFIT_ROWS = 8
PASS_RATIO = 0.1  # final loss at most 10% of the first...
PASS_ABS = 0.05  # ...or below this absolute value
STALL_RATIO = 0.9  # under a 10% drop after all steps: it is not learning this batch at all


def check_overfit(ctx: CheckContext) -> list[Finding]:
    if not ctx.overfit or not ctx.runnable():
        return []
    batch = sample_batches(ctx, 1, size=min(OVERFIT_ROWS, len(ctx.train_dataset)))[0]
    losses = overfit_losses(ctx, batch, ctx.cfg.doctor.overfit_steps, ctx.cfg.doctor.overfit_lr)
    return [_verdict(ctx, losses, batch)]


def overfit_losses(ctx: CheckContext, batch: dict[str, Any], steps: int, lr: float) -> list[float]:
    import torch

    model = copy.deepcopy(ctx.model)
    model.train(False)  # no dropout: memorising must be possible in principle
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    device = model_device(model)
    batch = to_device(batch, device)
    losses = []
    try:
        for _ in range(steps):
            with autocast(ctx, device):
                loss = model(**batch).loss
            losses.append(float(loss.detach()))
            if not math.isfinite(losses[-1]):
                break
            opt.zero_grad(set_to_none=True)
            loss.float().backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
    finally:
        del model, opt
    return losses


def _verdict(ctx: CheckContext, losses: list[float], batch: dict[str, Any]) -> Finding:
    first, last = losses[0], losses[-1]
    labels = batch.get("labels")
    supervised = int((labels != -100).sum()) if labels is not None else None
    ev = dict(
        steps=len(losses),
        lr=ctx.cfg.doctor.overfit_lr,
        rows=int(batch["input_ids"].shape[0]),
        first_loss=first,
        last_loss=last,
        min_loss=min(losses),
        supervised_targets=supervised,
    )
    if math.isfinite(last) and (last <= PASS_ABS or last <= PASS_RATIO * first):
        return info(
            "overfit.one_batch", f"one batch memorised: loss {first:.3f} -> {last:.4f} in {len(losses)} steps", **ev
        )
    if math.isfinite(last) and supervised != 0 and last <= STALL_RATIO * first:
        return warning(
            "overfit.one_batch",
            f"loss fell {first:.3f} -> {last:.3f} in {len(losses)} steps but did not approach zero",
            "raise doctor.overfit_lr or doctor.overfit_steps; if it still stalls, check labels and masking",
            **ev,
        )
    if supervised == 0:
        cause = "every target is masked (-100): there is nothing to learn"
    elif not math.isfinite(last):
        cause = "the loss became non-finite"
    else:
        cause = "labels do not match inputs, targets are masked wrongly, or the lr / trainable parameters are off"
    return error(
        "overfit.one_batch",
        f"could not memorise one batch of {ev['rows']}: loss {first:.3f} -> {last:.3f} ({cause})",
        "inspect a decoded batch (inputs vs labels), check that -100 covers only prompt/pad tokens, "
        "that trainable parameters exist, and try a higher doctor.overfit_lr",
        **ev,
    )
