"""`tunelab bench CONFIG`: the same model, seed and data under several batching/precision settings.

Every row trains a fresh copy of the same initial model for the same number of optimizer steps
(whole length-group cycles, after an untimed warm-up) with the same optimizer. Two references
are always measured in the same run:
- `naive`: what users had: padded to max_length, fp32, random order, default loader;
- `ideal`: the same number of real tokens in uniform-length batches, built before timing (no
  padding, no data loading): the ceiling for this model on this machine.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunelab.bench.measure import (
    WARMUP_STEPS,
    BenchResult,
    BenchSpec,
    batch_order,
    endless_batches,
    grouped_cycle_steps,
    ideal_batches,
    run_steps,
)
from tunelab.errors import ConfigError

if TYPE_CHECKING:
    from tunelab.config.schema import Config
    from tunelab.runtime.plan import RuntimePlan

CHOICES = ("max_length", "dynamic", "grouped", "bucketed", "packed", "auto")
DEFAULT_STRATEGIES = ("dynamic", "grouped", "packed", "auto")


def build_specs(plan: RuntimePlan, strategies: Sequence[str], auto: tuple[str, str], packable: bool) -> list[BenchSpec]:
    """naive first, then the requested strategies at the plan's precision and loader, ideal last."""
    specs = [BenchSpec("naive", "max_length", note="padded to max_length, fp32, random order, default loader")]
    loader = {"num_workers": plan.dataloader_num_workers, "pin_memory": plan.dataloader_pin_memory}
    for name in strategies:
        if name not in CHOICES:
            raise ConfigError(
                f"bench --strategies: unknown strategy {name!r}", hint=f"choose from {', '.join(CHOICES)}"
            )
        strategy, note = (auto[0], auto[1]) if name == "auto" else (name, "")
        if strategy == "packed" and not packable:
            continue  # this model cannot be packed; resolve_strategy explains it for `auto`
        order = strategy if strategy in ("grouped", "bucketed") else "random"
        specs.append(BenchSpec(name, strategy, precision=plan.precision, order=order, note=note, **loader))
    specs.append(
        BenchSpec(
            "ideal", "ideal", precision=plan.precision, note="uniform-length batches, no padding, no data loading"
        )
    )
    return specs


def whole_cycles(steps: int, num_rows: int, batch_size: int) -> int:
    """Round `steps` up to whole length-group cycles so every row sees the same length mix."""
    cycle = grouped_cycle_steps(num_rows, batch_size)
    return max(cycle, math.ceil(steps / cycle) * cycle)


def steps_note(requested: int | None, steps: int, num_rows: int, batch_size: int) -> str:
    """How many steps are timed and why that many, e.g. when --steps 10 becomes 14."""
    cycle = grouped_cycle_steps(num_rows, batch_size)
    why = f"whole length-group cycles of {cycle} steps, so every configuration sees the same length mix"
    if requested is None:
        head = f"{steps} optimizer steps ({why})"
    elif requested != steps:
        head = f"{steps} optimizer steps (--steps {requested} rounded up to {why})"
    else:
        head = f"{steps} optimizer steps"
    return f"{head}, after {WARMUP_STEPS} untimed warm-up steps (batch {batch_size}, {num_rows} rows)"


def run_bench(
    make_model: Callable[[], Any],
    rows: Any,
    *,
    tokenizer: Any,
    task_kind: str,
    max_length: int,
    batch_size: int,
    steps: int,
    specs: Sequence[BenchSpec],
    device: str,
    varlen_attention: bool = False,
    lr: float = 1e-4,
    seed: int = 0,
    progress: Any = None,
    warmup_steps: int = WARMUP_STEPS,
) -> list[BenchResult]:
    """Measure every spec on `rows` (tokenized: input_ids, labels, length). Returns one result per spec."""
    import torch

    from tunelab.data.batching import make_collator

    lengths = [int(n) for n in rows["length"]] if hasattr(rows, "column_names") else [len(r["input_ids"]) for r in rows]
    torch.manual_seed(seed)
    base = make_model()
    initial = copy.deepcopy(base.state_dict())
    results = []
    for spec in specs:
        base.load_state_dict(initial)  # same initial weights for every row
        model = copy.deepcopy(base)
        torch.manual_seed(seed)
        task = progress.add_task(spec.name, total=steps) if progress else None
        tick = (lambda i, t=task: progress.update(t, completed=i + 1)) if progress else None
        order = batch_order(spec, lengths, batch_size, seed)
        if spec.strategy == "ideal":
            batches = iter(ideal_batches(rows, order, batch_size, steps, task_kind))
            warm = iter(ideal_batches(rows, order, batch_size, max(warmup_steps, 1), task_kind))
        else:
            collate = make_collator(spec.strategy, tokenizer, task_kind, max_length, varlen_attention=varlen_attention)
            batches = endless_batches(rows, order, batch_size, collate, spec)
            # Warm-up batches come from a separate pass, so the timed steps start a fresh cycle.
            warm = endless_batches(rows, order, batch_size, collate, spec)
        results.append(
            run_steps(model, batches, steps, spec, device, lr=lr, warmup=warm, on_step=tick, warmup_steps=warmup_steps)
        )
        del model
    return results


def bench_command(
    cfg: Config, steps: int | None = None, strategies: str | None = None, out: Path | None = None
) -> list[BenchResult]:
    """Entry point of `tunelab bench`: load the config's model and train split, measure, write results."""
    from tunelab import ui
    from tunelab.bench.report import write_results
    from tunelab.bench.setup import load_bench_inputs
    from tunelab.data.batching import resolve_strategy, supports_packing
    from tunelab.runtime.plan import apply_global_settings, decide_plan

    console = ui.err()
    plan = decide_plan(cfg)
    apply_global_settings(plan)
    console.print(f"runtime plan: {plan.summary()}")
    inputs = load_bench_inputs(cfg, plan)
    probe = inputs.make_model()
    auto = resolve_strategy(
        cfg.model_copy(update={"data": cfg.data.model_copy(update={"batching": "auto"})}), plan, probe
    )
    packable = supports_packing(probe)
    del probe
    console.print(f"batching {auto[1]}")
    names = [s.strip() for s in strategies.split(",") if s.strip()] if strategies else list(DEFAULT_STRATEGIES)
    specs = build_specs(plan, names, auto, packable)
    bs = cfg.training.per_device_train_batch_size
    n_steps = whole_cycles(steps or 2 * grouped_cycle_steps(len(inputs.rows), bs), len(inputs.rows), bs)
    console.print(f"{len(specs)} configurations x {steps_note(steps, n_steps, len(inputs.rows), bs)}")
    results = _with_progress(
        lambda progress: run_bench(
            inputs.make_model,
            inputs.rows,
            tokenizer=inputs.tokenizer,
            task_kind=inputs.task_kind,
            max_length=cfg.data.max_length,
            batch_size=bs,
            steps=n_steps,
            specs=specs,
            device=plan.device,
            varlen_attention=plan.varlen_attention,
            lr=cfg.training.learning_rate,
            seed=cfg.training.seed,
            progress=progress,
        )
    )
    target = Path(out) if out else Path(cfg.output_dir) / "bench"
    meta = {
        "config": cfg.name,
        "model": cfg.model.name_or_path,
        "task": cfg.task.type,
        "batch_size": bs,
        "steps": n_steps,
        "rows": len(inputs.rows),
        "max_length": cfg.data.max_length,
        "auto": {"strategy": auto[0], "reason": auto[1]},
        "plan": plan.to_dict(),
    }
    paths = write_results(results, target, meta)
    from tunelab.bench.report import markdown_table

    print(markdown_table(results), flush=True)  # plain stdout: a table to paste, never wrapped
    console.print(f"wrote {', '.join(str(p) for p in paths)}")
    return results


def _with_progress(fn: Callable[[Any], Any]) -> Any:
    from tunelab import ui

    with ui.progress(unit="steps") as progress:
        return fn(progress)
