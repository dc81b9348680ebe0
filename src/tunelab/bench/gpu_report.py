"""The report half of the GPU check: device stamp, the Markdown table, the docs section."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def device_stamp(device: str) -> dict[str, str]:
    import importlib.metadata as md
    import platform
    from datetime import datetime, timezone

    import torch

    stamp = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "device": torch.cuda.get_device_name(0) if device == "cuda" else (platform.processor() or platform.machine()),
        "python": platform.python_version(),
    }
    if device == "cuda":
        major, minor = torch.cuda.get_device_capability(0)
        stamp["capability"] = f"sm{major}{minor}"
        stamp["cuda"] = str(torch.version.cuda)
    for pkg in ("torch", "transformers", "peft", "flash-attn", "bitsandbytes", "liger-kernel"):
        try:
            stamp[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            stamp[pkg] = "-"
    return stamp


HEADER = (
    "| mode | configuration | precision | attention | samples/s | real tokens/s | model TFLOP/s | MFU "
    "| padding eff. | peak memory MB | final loss |"
)


def section_text(results: list[dict], stamp: dict[str, str], timings: dict[str, float], s: Any, num_labels: int) -> str:
    """The Markdown of one GPU check: stamp, what was measured, the table, time per part (`s`: CheckSettings)."""
    lines = [HEADER, "|" + "---|" * (HEADER.count("|") - 1)]
    for r in results:
        lines.append(
            f"| {r['mode']} | {r['configuration']} | {r['precision_used']} | {r['attention_used']} "
            f"| {r['samples_per_s']:.1f} | {r['tokens_per_s']:,.0f} | {r['tflops']:.1f} | {100 * r['mfu']:.1f}% "
            f"| {r['padding_efficiency']:.3f} | {r['peak_memory_mb']:,.0f} | {r['final_loss']:.4f} |"
        )
    shape = "tiny (dry run)" if s.dry_run else "Qwen3-4B-shaped"
    where = ", ".join(f"{k} {v}" for k, v in stamp.items())
    took = ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
    peaks = sorted(
        {f"{r['precision_used']}: {r['peak_flops'] / 1e12:.1f} TFLOP/s ({r['peak_source']})" for r in results}
    )
    return (
        f"_Measured {where}._\n\n"
        f"{shape} classifier, {num_labels} classes, {s.rows} rows (users' profile: mean ~211, max 287, "
        f"max_length {s.max_length}), batch {s.batch}, {s.steps} timed optimizer steps after {s.warmup} warm-up. "
        f"Peaks used for MFU: {'; '.join(peaks)}.\n\n" + "\n".join(lines) + f"\n\nTime per part: {took}."
    )


def write_docs_section(path: Path, body: str, name: str = "gpu-check") -> None:
    """Replace (or append) the `<!-- bench:NAME -->` section of docs/benchmarks.md, atomically."""
    import re

    from tunelab.io import atomic_write_text

    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    block = f"{start}\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _m: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    atomic_write_text(path, text)
