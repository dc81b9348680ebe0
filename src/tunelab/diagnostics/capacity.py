"""What fits where: the memory plan of a run for common device sizes, from the model's config alone.

For each way to train (full fine-tune with fp32 master weights, LoRA over a bf16 base, QLoRA over
a 4-bit base; with and without gradient checkpointing) and each device size (24, 48, 80 and
141 GiB: the usual single cards), the largest power-of-two micro-batch whose estimate stays under
the doctor's warning share of the device. The estimate is memory.estimate (weights, gradients,
optimizer states, activations at data.max_length); a classifier's fresh head is counted as
trained in full. Nothing is loaded: the architecture is instantiated on the meta device.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from tunelab.diagnostics.context import CheckContext
from tunelab.diagnostics.findings import Finding, info
from tunelab.diagnostics.memory import GIB, WARN_SHARE, Setup, Shape, estimate, model_shape

if TYPE_CHECKING:
    from tunelab.config.schema import Config

DEVICE_GIBS = (24, 48, 80, 141)
CAPACITY_ID = "memory.capacity"
MAX_MICRO_BATCH = 256  # shown as 256+ when reached


@dataclass(frozen=True)
class Way:
    name: str
    setup: Setup


def ways(cfg: Config) -> list[Way]:
    """Full FT, LoRA and QLoRA, each without and with gradient checkpointing (CUDA, bf16)."""
    base = Setup("float32", False, False, False, False, 1)
    lora = replace(base, weight_dtype="bfloat16", lora=True)
    qlora = replace(lora, load_in_4bit=True)
    out = []
    for name, setup in (
        ("full FT (fp32 master, bf16 autocast)", base),
        ("LoRA (bf16 base)", lora),
        ("QLoRA (4-bit base)", qlora),
    ):
        out.append(Way(name, setup))
        out.append(Way(f"{name} + grad ckpt", replace(setup, gradient_checkpointing=True)))
    return out


def with_head(shape: Shape, num_labels: int | None) -> Shape:
    """A classifier's shape: the base (meta model without head) plus a fresh hidden x labels head."""
    if not num_labels or shape.built:
        return shape
    head = shape.hidden * num_labels
    return replace(shape, params=shape.params + head, trainable=shape.trainable + head, head=head)


def largest_batch(cfg: Config, shape: Shape, kind: str, setup: Setup, device_gib: float) -> tuple[int, float] | None:
    """(micro-batch, GiB) of the largest power-of-two batch under WARN_SHARE of the device, or None."""
    limit = WARN_SHARE * device_gib * GIB
    best = None
    batch = 1
    while batch <= MAX_MICRO_BATCH:
        total = estimate(cfg, shape, kind, replace(setup, batch=batch), "cuda")["total"]
        if total > limit:
            break
        best = (batch, total / GIB)
        batch *= 2
    return best


def capacity_rows(
    cfg: Config, shape: Shape, kind: str, device_gibs: tuple[int, ...] = DEVICE_GIBS
) -> list[dict[str, Any]]:
    """One row per way to train: {"way", "<n> GiB": micro-batch or None, "gib_at_batch1": ...}."""
    # The devices of the table have native bf16: activations are estimated at 16 bits (autocast).
    cfg = cfg.model_copy(update={"runtime": cfg.runtime.model_copy(update={"precision": "bf16"})})
    rows = []
    for way in ways(cfg):
        row: dict[str, Any] = {
            "way": way.name,
            "gib_at_batch1": round(estimate(cfg, shape, kind, way.setup, "cuda")["total"] / GIB, 1),
        }
        for gib in device_gibs:
            fit = largest_batch(cfg, shape, kind, way.setup, gib)
            row[f"{gib} GiB"] = fit[0] if fit else None
        rows.append(row)
    return rows


def check_capacity(ctx: CheckContext) -> list[Finding]:
    """Info finding: the capacity table (rows in the evidence), for `tunelab doctor` to show."""
    cfg = ctx.cfg
    shape = model_shape(cfg)  # from the config on meta: the plan for the model as configured, no LoRA applied
    if shape is None:
        return []
    labels = ctx.task.label_names if ctx.task is not None else None  # no task when the data did not load
    shape = with_head(shape, len(labels) if ctx.kind == "classification" and labels else None)
    rows = capacity_rows(cfg, shape, ctx.kind)
    return [
        info(
            CAPACITY_ID,
            f"largest micro-batch at max_length {cfg.data.max_length} per device size (estimate, {_count(shape.params)} params)",
            rows=rows,
            max_length=cfg.data.max_length,
            num_labels=len(labels) if labels else None,
        )
    ]


def print_capacity(finding: Finding, console: Any = None) -> None:
    from tunelab import ui

    rows = finding.evidence["rows"]
    sizes = [k for k in rows[0] if k.endswith(" GiB")]
    ui.print_rows(
        f"memory plan: {finding.title}",
        ["way", "GiB at batch 1", *sizes],
        [[r["way"], r["gib_at_batch1"], *[_cell(r[s]) for s in sizes]] for r in rows],
        console=console,
    )


def _cell(batch: int | None) -> str:
    if batch is None:
        return "no fit"
    return f"{batch}+" if batch >= MAX_MICRO_BATCH else str(batch)


def _count(n: int) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.1f}M"
