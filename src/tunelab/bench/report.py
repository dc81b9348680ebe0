"""bench.md (Markdown table), bench.json and bench.png (bar chart), written atomically."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tunelab.bench.measure import BenchResult
from tunelab.io import atomic_path, atomic_write_json, atomic_write_text

HEADER = (
    "| configuration | samples/s | vs naive | vs ideal (tokens/s) | real tok/s | padded tok/s | padding eff. "
    "| data wait | peak memory MB | final loss | load (1m) |"
)


def _by_name(results: Sequence[BenchResult], name: str) -> BenchResult | None:
    return next((r for r in results if r.name == name), None)


def ratios(results: Sequence[BenchResult]) -> dict[str, dict[str, float]]:
    """samples/s relative to naive and real tokens/s relative to ideal, per configuration.

    `*_cpu` are the same ratios per process CPU-second (CPU runs only; NaN otherwise).
    """
    naive, ideal = _by_name(results, "naive"), _by_name(results, "ideal")
    nan = float("nan")
    out = {}
    for r in results:
        out[r.name] = {
            "vs_naive": r.samples_per_s / naive.samples_per_s if naive else nan,
            "vs_ideal": r.real_tokens_per_s / ideal.real_tokens_per_s if ideal else nan,
            "vs_naive_cpu": r.samples_per_cpu_s / naive.samples_per_cpu_s if naive else nan,
            "vs_ideal_cpu": r.real_tokens_per_cpu_s / ideal.real_tokens_per_cpu_s if ideal else nan,
        }
    return out


def has_cpu_time(results: Sequence[BenchResult]) -> bool:
    return bool(results) and all(r.cpu_seconds > 0 for r in results)


CPU_HEADER = "| samples/CPU-s | vs naive (CPU) | vs ideal (CPU) "


def markdown_table(results: Sequence[BenchResult]) -> str:
    """One row per configuration; on CPU also per CPU-second (fair when other jobs share the CPU)."""
    rel = ratios(results)
    cpu = has_cpu_time(results)
    at = HEADER.index("| real tok/s")
    header = HEADER[:at] + CPU_HEADER + HEADER[at:] if cpu else HEADER
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for r in results:
        name = r.name if r.name == r.strategy or r.strategy == "ideal" else f"{r.name} (= {r.strategy})"
        per_cpu = (
            f"| {r.samples_per_cpu_s:.1f} | {rel[r.name]['vs_naive_cpu']:.2f}x | {rel[r.name]['vs_ideal_cpu']:.2f} "
            if cpu
            else ""
        )
        lines.append(
            f"| {name} ({r.precision}) | {r.samples_per_s:.1f} | {rel[r.name]['vs_naive']:.2f}x | {rel[r.name]['vs_ideal']:.2f} "
            f"{per_cpu}| {r.real_tokens_per_s:,.0f} | {r.padded_tokens_per_s:,.0f} | {r.padding_efficiency:.3f} "
            f"| {100 * r.data_wait_share:.1f}% | {r.peak_memory_mb:,.0f} | {r.final_loss:.4f} | {r.load_avg:.1f} |"
        )
    return "\n".join(lines)


def write_results(results: Sequence[BenchResult], out_dir: Path, meta: dict[str, Any]) -> list[Path]:
    """Write bench.md, bench.json, bench.png into `out_dir`; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rel = ratios(results)
    memory_kind = results[0].memory_kind if results else ""
    md = (
        f"# tunelab bench: {meta.get('config', '')}\n\n"
        f"{meta.get('steps')} optimizer steps per configuration (whole length-group cycles, after warm-up), "
        f"batch {meta.get('batch_size')}, {meta.get('rows')} rows, max_length {meta.get('max_length')}. "
        f"Peak memory is {memory_kind}. `auto` chose: {meta.get('auto', {}).get('reason', '?')}.\n\n"
        f"{markdown_table(results)}\n"
    )
    paths = [atomic_write_text(out_dir / "bench.md", md)]
    payload = {"meta": meta, "results": [{**r.to_dict(), **rel[r.name]} for r in results]}
    paths.append(atomic_write_json(out_dir / "bench.json", payload))
    paths.append(bar_chart(results, out_dir / "bench.png", title=str(meta.get("config", "bench"))))
    return paths


def bar_chart(results: Sequence[BenchResult], target: Path, title: str = "") -> Path:
    """Horizontal bars of samples/s; naive grey, ideal hatched; each bar labelled with x naive."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rel = ratios(results)
    names = [f"{r.name} ({r.precision})" for r in results]
    values = [r.samples_per_s for r in results]
    colors = ["#9e9e9e" if r.name == "naive" else "#c5cae9" if r.name == "ideal" else "#3f51b5" for r in results]
    fig, ax = plt.subplots(figsize=(7, 0.55 * len(results) + 1.2))
    bars = ax.barh(names[::-1], values[::-1], color=colors[::-1])
    for bar, r in zip(bars, results[::-1]):
        ax.text(
            bar.get_width(),
            bar.get_y() + bar.get_height() / 2,
            f" {rel[r.name]['vs_naive']:.2f}x",
            va="center",
            fontsize=9,
        )
    ax.set_xlabel("samples / s (higher is better)")
    ax.set_title(f"tunelab bench: {title}")
    ax.set_xlim(0, max(values) * 1.2 if values else 1)
    fig.tight_layout()
    with atomic_path(target, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return Path(target)
