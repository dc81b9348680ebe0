"""Benchmark 5: the cost of checkpoint integrity (the manifest's digests) against the save itself.

A full fine-tune checkpoint is what the Trainer writes: `model.safetensors` (fp32 weights),
`optimizer.pt` (two Adam moments per weight, torch.save), scheduler/RNG/state files, into the
page cache; tunelab then fsyncs every file and writes `tunelab_manifest.json` with a digest of
each. Timed here, on the real functions (`training.checkpointing.write_manifest` /
`verify_checkpoint`), each repeat on freshly written (unflushed) files, as in training:

- write: the Trainer's writes (page cache);
- durable save without integrity: the write + an fsync pass + a manifest of sizes only;
- `write_manifest` as tunelab runs it: the fsync pass in one thread while the digests run in
  others; the integrity cost is its time minus the fsync-only pass, as a share of the durable save;
- for the record, digests alone on a flushed, page-cache-hot checkpoint (no overlap to hide
  behind): SHA-256 (what the manifest used before) and the fast digest (xxh3-128 over 16 MiB
  chunks in threads, `io.fast_file_digest`); and `verify_checkpoint` as on resume.

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


def write_checkpoint(d: Path, params: int) -> float:
    """Write a checkpoint-shaped directory of `params` fp32 weights as the Trainer does (no fsync)."""
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
    return time.perf_counter() - start


def time_flush_only(d: Path) -> float:
    """A durable save without integrity: the same fsync pass and a manifest of sizes only."""
    from tunelab.io import atomic_write_json
    from tunelab.training.checkpointing import _fsync_files

    start = time.perf_counter()
    paths = sorted(p for p in d.rglob("*") if p.is_file())
    _fsync_files(paths)
    atomic_write_json(d / "sizes.json", {p.name: p.stat().st_size for p in paths})
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
    """tunelab's write_manifest on unflushed files: fsync pass and digests side by side, then the manifest."""
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
    keys = ("write", "flush", "manifest", "sha256", "fast", "verify")
    rows: dict[str, list[float]] = {k: [] for k in keys}
    for r in range(repeats):
        # Each of the two variants on freshly written files; their order alternates, so drift in
        # the machine's load falls on both alike.
        for variant in ("flush", "manifest") if r % 2 == 0 else ("manifest", "flush"):
            d = root / f"checkpoint-{params}-{r}-{variant}"
            rows["write"].append(write_checkpoint(d, params))
            rows[variant].append(time_flush_only(d) if variant == "flush" else time_manifest(d))
            if variant == "manifest":  # flushed and hot now: digests alone, and verify
                rows["sha256"].append(time_digests(d, sha256=True))
                rows["fast"].append(time_digests(d, sha256=False))
                rows["verify"].append(time_verify(d))
            shutil.rmtree(d)
    out = {k: statistics.median(v) for k, v in rows.items()}
    out["save"] = out["write"] + out["flush"]  # a durable save without integrity
    out["cost"] = max(0.0, out["manifest"] - out["flush"])
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
        "A full fine-tune checkpoint (fp32 weights + two Adam moments, the Trainer's file layout) written "
        "into the page cache as the Trainer does, then made durable: by an fsync pass alone (no integrity), "
        "or by tunelab's `write_manifest` (the fsync pass in one thread, the digests beside it). "
        "Integrity cost = `write_manifest` minus the fsync-only pass; its share is of the durable save "
        "(write + fsync). `benchmarks/bench_checkpoint_hash.py`.",
        "",
        "| parameters | checkpoint size | write | fsync pass | durable save | write_manifest (fsync + digests) | "
        "integrity cost | share of save | digests alone, hot: xxh3-128 | SHA-256 | verify on resume |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m, r in results.items():
        lines.append(
            f"| {m}M | {r['bytes'] / 2**30:.2f} GiB | {r['write']:.2f} s | {r['flush']:.2f} s | {r['save']:.2f} s | "
            f"{r['manifest']:.3f} s | {r['cost']:.3f} s | {r['cost'] / r['save']:.1%} | "
            f"{r['fast']:.3f} s ({r['fast'] / r['save']:.1%}) | {r['sha256']:.2f} s ({r['sha256'] / r['save']:.0%}) | "
            f"{r['verify']:.3f} s |"
        )
    lines.append("")
    for m, r in results.items():
        share = r["cost"] / r["save"]
        verdict = "MET" if share <= TARGET else "**MISSED**"
        lines.append(
            f"- {m}M parameters: integrity costs **{share:.1%}** of the durable save (target <= 5%) -> {verdict}"
        )
    lines += [
        "- Without the overlap (digests after the flush, the `digests alone` column) the fast digests "
        "would cost " + ", ".join(f"{r['fast'] / r['save']:.1%}" for r in results.values()) + " of the save; "
        "SHA-256 " + ", ".join(f"{r['sha256'] / r['save']:.0%}" for r in results.values()) + ".",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.small:
        write_section("checkpoint_hash", text)


if __name__ == "__main__":
    main()
