"""Check 10, data pipeline: can the DataLoader feed the model as fast as the model consumes?

Times batches coming out of a DataLoader built like training's (same dataset, collator, workers
and pin-memory from the runtime plan) against forward+backward steps of the model on this
device. With no workers the loader runs in the training loop's time; with workers it runs in
parallel and only has to keep up.
"""

from __future__ import annotations

import time
from typing import Any

from tunelab.diagnostics.batches import autocast, batch_size, model_collator, model_device, to_device, train_mode
from tunelab.diagnostics.context import CheckContext
from tunelab.diagnostics.findings import Finding, info, warning

TIMED_BATCHES = 3
SERIAL_SHARE_WARN = 0.2  # no workers: loading takes over 20% of every step
PARALLEL_RATIO_WARN = 1.0  # workers: a batch takes longer to make than to consume


def check_pipeline(ctx: CheckContext) -> list[Finding]:
    if not ctx.runnable():
        return []
    loader_s, first = time_loader(ctx)
    step_s = time_step(ctx, first)
    workers = ctx.plan.dataloader_num_workers if ctx.plan else 0
    pin = ctx.plan.dataloader_pin_memory if ctx.plan else False
    ev = dict(
        loader_s_per_batch=loader_s,
        step_s=step_s,
        workers=workers,
        pin_memory=pin,
        batch_size=batch_size(ctx),
        device=str(model_device(ctx.model)),
    )
    if workers == 0:
        share = loader_s / (loader_s + step_s) if loader_s + step_s > 0 else 0.0
        ev["loader_share_of_step"] = round(share, 3)
        if share > SERIAL_SHARE_WARN:
            return [
                warning(
                    "pipeline.loader",
                    f"the data loader takes {share:.0%} of each step ({loader_s * 1e3:.1f} ms per batch vs "
                    f"{step_s * 1e3:.1f} ms forward+backward): the model waits for data",
                    _advice(ctx),
                    **ev,
                )
            ]
    elif loader_s > PARALLEL_RATIO_WARN * step_s:
        ev["ratio"] = round(loader_s / step_s, 2) if step_s else None
        return [
            warning(
                "pipeline.loader",
                f"{workers} loader workers make a batch in {loader_s * 1e3:.1f} ms, the model uses one in "
                f"{step_s * 1e3:.1f} ms: the device starves",
                _advice(ctx),
                **ev,
            )
        ]
    return [info("pipeline.loader", f"loader {loader_s * 1e3:.1f} ms/batch, step {step_s * 1e3:.1f} ms", **ev)]


def _advice(ctx: CheckContext) -> str:
    cuda = ctx.plan is not None and ctx.plan.device == "cuda"
    tips = [
        "move per-sample work out of __getitem__/collate into tokenization (cached once)",
        "raise training.dataloader_num_workers"
        + (" (each worker prefetches in parallel)" if cuda else " (on CPU this competes with the model for cores)"),
    ]
    if cuda:
        tips.append("dataloader_pin_memory: true for faster host-to-GPU copies")
    return "; ".join(tips)


def time_loader(ctx: CheckContext) -> tuple[float, dict[str, Any]]:
    """Seconds per batch, after the first (worker start-up excluded); also returns the first batch."""
    from torch.utils.data import DataLoader

    plan = ctx.plan
    workers = plan.dataloader_num_workers if plan else 0
    loader = DataLoader(
        ctx.train_dataset,
        batch_size=batch_size(ctx),
        shuffle=False,
        collate_fn=model_collator(ctx),
        num_workers=workers,
        pin_memory=bool(plan and plan.dataloader_pin_memory and plan.device == "cuda"),
        prefetch_factor=plan.dataloader_prefetch_factor if plan and workers else None,
    )
    it = iter(loader)
    first = next(it)
    start, n = time.perf_counter(), 0
    for _ in range(TIMED_BATCHES):
        try:
            next(it)
        except StopIteration:
            break
        n += 1
    elapsed = time.perf_counter() - start
    del it
    return (elapsed / n if n else elapsed), first


def time_step(ctx: CheckContext, batch: dict[str, Any]) -> float:
    """Seconds per forward+backward (after one warm-up step); gradients are dropped after."""
    import torch

    model = ctx.model
    device = model_device(model)
    batch = to_device(batch, device)
    times = []
    try:
        with train_mode(model, True):
            for _ in range(1 + 2):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                with autocast(ctx, device):
                    loss = model(**batch).loss
                loss.float().backward()
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
    finally:
        model.zero_grad(set_to_none=True)
    return min(times[1:])
