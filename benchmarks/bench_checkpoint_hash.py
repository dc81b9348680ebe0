"""Benchmark 5: the cost of checkpoint integrity (the manifest's digests) against the save itself.

A full fine-tune checkpoint is what the Trainer writes: `model.safetensors` (fp32 weights),
`optimizer.pt` (two Adam moments per weight, torch.save), scheduler/RNG/state files; tunelab then
fsyncs every file and writes `tunelab_manifest.json` with a digest of each. Timed here, on the
real functions (`training.checkpointing.write_manifest` / `verify_checkpoint`):

- save: writing those files + fsync (what a durable checkpoint costs without any digest);
- digests of every file with SHA-256 (what the manifest used before) and with the fast digest
  (xxh3-128 over 16 MiB chunks in threads, `io.fast_file_digest`), right after the save as in
  training (page cache hot); the whole `write_manifest`; `verify_checkpoint` as on resume.

    .venv/bin/python benchmarks/bench_checkpoint_hash.py               # writes docs/benchmarks.md
    .venv/bin/python benchmarks/bench_checkpoint_hash.py --small       # smoke run, docs untouched
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from common import load_note, stamp, write_section

TARGET = 0.05  # digests may cost at most 5% of the save


def _fsync_all(d: Path) -> None:
    for p in d.rglob("*"):
        if p.is_file():
            with open(p, "rb") as fh:
                os.fsync(fh.fileno())


def save_checkpoint(d: Path, params: int) -> float:
    """Write a checkpoint-shaped directory of `params` fp32 weights; seconds including fsync."""
    import torch
    from safetensors.torch import save_file

    n_tensors = 16
    shape = (params // n_tensors // 1024, 1024)
    gen = torch.Generator().manual_seed(0)
    weights = {f"layer{i}.weight": torch.randn(shape, generator=gen) for i in range(n_tensors)}
    moments = {
        "state": {
            i: {"exp_avg": torch.randn(shape, generator=gen), "exp_avg_sq": torch.rand(shape, generator=gen)}
            for i in range(n_tensors)
        },
        "param_groups": [{"lr": 1e-4, "params": list(range(n_tensors))}],
    }
    d.mkdir(parents=True)
    start = time.perf_counter()
    save_file(weights, str(d / "model.safetensors"))
    torch.save(moments, d / "optimizer.pt")
    torch.save({"last_epoch": 1}, d / "scheduler.pt")
    torch.save({"python": os.urandom(5000)}, d / "rng_state.pth")
    (d / "trainer_state.json").write_text(json.dumps({"global_step": 100, "log_history": [{}] * 100}))
    _fsync_all(d)
    return time.perf_counter() - start


def time_digests(d: Path, sha256: bool) -> float:
    """Seconds to digest every file of the checkpoint, as write_manifest does (SHA-256: as it did)."""
    from tunelab.io import fast_file_digest, sha256_file

    digest = sha256_file if sha256 else fast_file_digest
    start = time.perf_counter()
    for p in sorted(d.rglob("*")):
        if p.is_file():
            digest(p)
    return time.perf_counter() - start


def time_manifest(d: Path) -> float:
    """The whole write_manifest: fsync pass (durability, already paid by the save here) + digests + write."""
    from tunelab.training.checkpointing import write_manifest

    start = time.perf_counter()
    write_manifest(d, 100)
    return time.perf_counter() - start


def time_verify(d: Path) -> float:
    from tunelab.training.checkpointing import verify_checkpoint

    start = time.perf_counter()
    problem = verify_checkpoint(d)
    elapsed = time.perf_counter() - start
    assert problem is None, problem
    return elapsed


def measure(root: Path, params: int, repeats: int) -> dict[str, float]:
    rows: dict[str, list[float]] = {"save": [], "sha256": [], "fast": [], "manifest": [], "verify": []}
    for r in range(repeats):
        d = root / f"checkpoint-{params}-{r}"
        rows["save"].append(save_checkpoint(d, params))
        rows["sha256"].append(time_digests(d, sha256=True))
        rows["fast"].append(time_digests(d, sha256=False))
        rows["manifest"].append(time_manifest(d))
        rows["verify"].append(time_verify(d))
        shutil.rmtree(d)
    out = {k: statistics.median(v) for k, v in rows.items()}
    out["bytes"] = params * 4 * 3
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true", help="smoke run: 4M parameters, docs not written")
    ap.add_argument("--params", default="25,100,400", help="millions of parameters per checkpoint, comma-separated")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dir", default=None, help="where to write (default: a temp dir on the repository's disk)")
    args = ap.parse_args()
    sizes = [4] if args.small else [int(x) for x in args.params.split(",")]
    base = Path(args.dir) if args.dir else Path(__file__).resolve().parent
    repeats = 1 if args.small else args.repeats
    with tempfile.TemporaryDirectory(prefix=".bench_ckpt.", dir=base) as tmp:
        results = {m: measure(Path(tmp), m * 1_000_000, repeats) for m in sizes}
    lines = [
        "## 5. Checkpoint integrity: manifest digests vs the save",
        "",
        stamp(f"{load_note()}; digest threads {min(8, os.cpu_count() or 1)}; medians of {repeats}"),
        "",
        "A full fine-tune checkpoint (fp32 weights + two Adam moments, Trainer's file layout), written and "
        "fsync'ed, then the manifest; page cache hot, as right after a save in training. "
        "`benchmarks/bench_checkpoint_hash.py`.",
        "",
        "| parameters | checkpoint size | save (write + fsync) | SHA-256 digests | share of save | "
        "fast digests (xxh3-128) | share of save | whole write_manifest | verify on resume |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m, r in results.items():
        share_sha, share_fast = r["sha256"] / r["save"], r["fast"] / r["save"]
        lines.append(
            f"| {m}M | {r['bytes'] / 2**30:.2f} GiB | {r['save']:.2f} s | {r['sha256']:.2f} s | {share_sha:.1%} | "
            f"{r['fast']:.3f} s | {share_fast:.1%} | {r['manifest']:.3f} s | {r['verify']:.3f} s |"
        )
    lines.append("")
    for m, r in results.items():
        share = r["fast"] / r["save"]
        verdict = "MET" if share <= TARGET else "**MISSED**"
        lines.append(f"- {m}M parameters: fast digests **{share:.1%}** of the save (target <= 5%) -> {verdict}")
    lines += [
        "- SHA-256 instead: " + ", ".join(f"{r['sha256'] / r['save']:.0%}" for r in results.values()) + " of the save",
        "- `whole write_manifest` also fsyncs each file once more (cheap here: the save already did; in "
        "training it is the Trainer's writes that this fsync makes durable) and writes the manifest.",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.small:
        write_section("checkpoint_hash", text)


if __name__ == "__main__":
    main()
