"""Shared pieces of the benchmark scripts: machine/version record, synthetic data, docs writing.

Benchmarks are scripts, not tests: they print tables and replace their own section of
docs/benchmarks.md (between `<!-- bench:NAME -->` markers), stamped with machine, versions, date.
"""

from __future__ import annotations

import math
import os
import platform
import random
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "benchmarks.md"
sys.path.insert(0, str(ROOT / "src"))

# The two length profiles of the issue (token counts per sample).
PROFILES = {
    # users' data: mean ~211 tokens, max 287, trained with max_length 320
    "users": {"max_length": 320, "describe": "mean ~211, max 287, max_length 320"},
    # long-tailed: median ~90, p99 ~300 (lognormal), max_length 320
    "longtail": {"max_length": 320, "describe": "median ~90, p99 ~300, max_length 320"},
}


def profile_lengths(profile: str, n: int, seed: int = 0) -> list[int]:
    if profile == "users":
        from tunelab.bench.measure import user_lengths

        return user_lengths(n, seed)
    rng = random.Random(seed)
    if profile == "longtail":
        sigma = (math.log(300) - math.log(90)) / 2.326  # p99 = 300 for a lognormal with median 90
        return [max(8, min(320, round(rng.lognormvariate(math.log(90), sigma)))) for _ in range(n)]
    raise ValueError(profile)


def length_summary(lengths: list[int]) -> str:
    s = sorted(lengths)
    q = lambda p: s[min(len(s) - 1, int(p * len(s)))]  # noqa: E731
    return f"mean {sum(s) / len(s):.0f}, median {q(0.5)}, p99 {q(0.99)}, max {s[-1]}"


def machine() -> dict[str, str]:
    import importlib.metadata as md

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for pkg in ("torch", "transformers", "datasets", "tokenizers", "accelerate", "trl"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = "-"
    gpu = "none"
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "gpu": gpu,
        "python": platform.python_version(),
        **versions,
    }


def ram_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return f"{int(line.split()[1]) / 2**20:.0f} GiB"
    except OSError:
        pass
    return "?"


def stamp(load: str = "") -> str:
    m = machine()
    vers = ", ".join(f"{k} {m[k]}" for k in ("torch", "transformers", "datasets", "tokenizers"))
    tail = f"; {load}" if load else ""
    return (
        f"_Measured {m['date']} on {m['cpu']} ({m['cores']} cores, {ram_gib()} RAM, GPU: {m['gpu']}); "
        f"Python {m['python']}, {vers}{tail}._"
    )


def write_section(name: str, body: str) -> None:
    """Replace (or append) this benchmark's section of docs/benchmarks.md, atomically."""
    from tunelab.bench.gpu_report import write_docs_section

    write_docs_section(DOCS, body, name)


def verdict(value: float, target: float, what: str, higher: bool = True) -> str:
    ok = value >= target if higher else value <= target
    sign = ">=" if higher else "<="
    return f"- {what}: **{value:.2f}** (target {sign} {target}) -> {'MET' if ok else '**MISSED**'}"


def add_threads_arg(ap) -> None:
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads (default: torch's own choice). On a CPU shared with other jobs use 1: "
        "with every core busy, each parallel op waits for a descheduled OpenMP thread",
    )


def set_threads(n: int | None) -> None:
    """Apply --threads (recorded in every section's stamp by load_note)."""
    import torch

    if n:
        torch.set_num_threads(n)


def load_note() -> str:
    """The 1-minute load average now: the CPU is shared, so every section records it at its start."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    import torch

    threads = torch.get_num_threads()
    return f"1-min load average at start: {load:.2f} on {os.cpu_count()} cores; torch threads: {threads}"


def pad_tokenizer():
    """A minimal fast tokenizer that only pads: the benchmarks feed synthetic token ids directly."""
    from tunelab.bench.measure import pad_tokenizer

    return pad_tokenizer()


def plan_for(task: str = "classification", **runtime):
    """The runtime plan tunelab itself would decide on this machine (one policy, no re-deciding)."""
    from tunelab.config.schema import Config
    from tunelab.runtime.plan import decide_plan

    cfg = Config(
        task={"type": task},
        data={"train_file": "synthetic"},
        model={"name_or_path": "synthetic"},
        runtime=runtime or {},
    )
    return cfg, decide_plan(cfg)
