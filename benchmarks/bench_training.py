"""Benchmarks 1 and 2: training throughput of the batching strategies, naive vs auto vs ideal.

1. classification, Qwen3-shaped decoder (random init, real Qwen3 vocabulary 151,936, 4 layers x
   256 -> ~42M parameters, most in the embedding), 280 classes, on the `users` and `longtail`
   length profiles;
2. causal-LM SFT (prompt masked with -100) on the `longtail` profile, same body with a 32,768-token
   vocabulary (~20M parameters): with it a max_length step already takes ~14 s on this CPU (1 thread), and
   Qwen3's 151,936 would make the untied LM head ~4x that, beyond the benchmark's time budget.

Defaults fit ~25 minutes on 2 shared cores: 1,600 classification rows (a length-group cycle of 25 steps
at batch 16) and 640 SFT rows (10 steps); `--rows 3200` gives transformers' full 50-batch cycles.

    .venv/bin/python benchmarks/bench_training.py               # full run, writes docs/benchmarks.md
    .venv/bin/python benchmarks/bench_training.py --small       # seconds: a smoke run, docs untouched
"""

from __future__ import annotations

import argparse
import random
import sys

from common import (
    PROFILES,
    ROOT,
    add_threads_arg,
    length_summary,
    load_note,
    pad_tokenizer,
    plan_for,
    profile_lengths,
    set_threads,
    stamp,
    verdict,
    write_section,
)

NUM_LABELS = 280
QWEN3_VOCAB = 151936
SFT_VOCAB = 32768
DEFAULT_ROWS = {"classification": 1600, "sft": 640}


def vocab_size(task: str, small: bool) -> int:
    return 2048 if small else (QWEN3_VOCAB if task == "classification" else SFT_VOCAB)


def build_model(task: str, small: bool):
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification

    from tunelab.models.pooling import enable_mask_pooling

    size = (
        dict(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=16,
        )
        if small
        else dict(
            hidden_size=256,
            intermediate_size=768,
            num_hidden_layers=4,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=64,
        )
    )
    cfg = AutoConfig.for_model(
        "qwen3",
        pad_token_id=0,
        eos_token_id=2,
        max_position_embeddings=512,
        tie_word_embeddings=False,
        num_labels=NUM_LABELS,
        vocab_size=vocab_size(task, small),
        **size,
    )
    if task == "classification":
        return enable_mask_pooling(AutoModelForSequenceClassification.from_config(cfg))
    return AutoModelForCausalLM.from_config(cfg)


def synthetic_rows(task: str, profile: str, n: int, vocab: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for length in profile_lengths(profile, n, seed):
        ids = [rng.randrange(3, vocab) for _ in range(length)]
        row = {"input_ids": ids, "attention_mask": [1] * length, "length": length}
        if task == "classification":
            row["labels"] = ids[0] % NUM_LABELS  # learnable from the first token
        else:
            prompt = max(1, int(0.6 * length))
            row["labels"] = [-100] * prompt + ids[prompt:]  # completion-only loss
        rows.append(row)
    return rows


def run(task: str, profile: str, args: argparse.Namespace) -> tuple[list, str]:
    load = load_note()
    from tunelab.bench.harness import build_specs, run_bench, whole_cycles
    from tunelab.bench.report import markdown_table, ratios, write_results
    from tunelab.data.batching import resolve_strategy

    cfg, plan = plan_for("classification" if task == "classification" else "sft")
    probe = build_model(task, args.small)
    params = sum(p.numel() for p in probe.parameters())
    auto = resolve_strategy(cfg, plan, probe)
    del probe
    max_length = PROFILES[profile]["max_length"]
    n_rows = args.rows or (96 if args.small else DEFAULT_ROWS[task])
    rows = synthetic_rows(task, profile, n_rows, vocab_size(task, args.small))
    steps = whole_cycles(args.steps, len(rows), args.batch)
    specs = build_specs(plan, ["dynamic", "grouped", "packed", "auto"], auto, packable=True)
    print(
        f"[{task}/{profile}] {params / 1e6:.1f}M params, {len(rows)} rows ({length_summary([r['length'] for r in rows])}), "
        f"batch {args.batch}, {steps} steps per configuration; {auto[1]}",
        flush=True,
    )
    results = run_bench(
        lambda: build_model(task, args.small),
        rows,
        tokenizer=pad_tokenizer(),
        task_kind="classification" if task == "classification" else "causal_lm",
        max_length=max_length,
        batch_size=args.batch,
        steps=steps,
        specs=specs,
        device=plan.device,
        seed=0,
    )
    table = markdown_table(results)
    print(table, flush=True)
    write_results(
        results,
        ROOT / "runs" / "benchmarks" / ("small" if args.small else "") / f"{task}-{profile}",
        {
            "config": f"{task}-{profile}",
            "steps": steps,
            "batch_size": args.batch,
            "rows": len(rows),
            "max_length": max_length,
            "auto": {"strategy": auto[0], "reason": auto[1]},
            "plan": plan.to_dict(),
        },
    )
    rel = ratios(results)
    by = {r.name: r for r in results}
    full_eff, full_steps = full_cycle_grouped_efficiency(profile, args.batch)
    target = 2.0 if profile == "users" else 5.0
    checks = [
        verdict(rel["auto"]["vs_naive"], target, "auto vs naive samples/s (wall clock)"),
        verdict(rel["auto"]["vs_naive_cpu"], target, "auto vs naive samples per CPU-second"),
        verdict(rel["auto"]["vs_ideal"], 0.9, "auto vs ideal tokens/s (wall clock)"),
        verdict(rel["auto"]["vs_ideal_cpu"], 0.9, "auto vs ideal tokens per CPU-second"),
        verdict(by["grouped"].padding_efficiency, 0.97, f"grouped padding efficiency (this run: {steps}-step cycle)"),
        verdict(
            full_eff,
            0.97,
            f"grouped padding efficiency over a full {full_steps}-step cycle (3,200 rows, collation only)",
        ),
        verdict(by["packed"].padding_efficiency, 0.99, "packed padding efficiency"),
        verdict(100 * by["auto"].data_wait_share, 2.0, "auto data wait, % of step time", higher=False),
        loss_check(by["auto"], by["naive"]),
    ]
    body = (
        f"### {task}, {profile} profile ({PROFILES[profile]['describe']})\n\n{stamp(load)}\n\n"
        f"{params / 1e6:.1f}M-parameter Qwen3-shaped model (vocabulary {vocab_size(task, args.small):,}), "
        f"{len(rows)} rows "
        f"({length_summary([r['length'] for r in rows])}), batch {args.batch}, {steps} optimizer steps per "
        f"configuration after warm-up; precision from the runtime plan: {plan.precision}. {auto[1]}.\n\n"
        f"{table}\n\n" + "\n".join(checks) + "\n"
    )
    return results, body


def full_cycle_grouped_efficiency(profile: str, batch: int, rows: int = 3200) -> tuple[float, int]:
    """Padding efficiency of `grouped` over transformers' full 50-batch mega-batch (no training).

    The timed runs use fewer rows, so their length-group cycle is shorter and each sorted pool
    smaller; this is the efficiency `tunelab train` gets on a dataset of >= 3200 rows.
    """
    from tunelab.bench.measure import BenchSpec, batch_order, grouped_cycle_steps

    lengths = profile_lengths(profile, rows, seed=0)
    order = batch_order(BenchSpec("grouped", "grouped", order="grouped"), lengths, batch, seed=0)
    steps = grouped_cycle_steps(rows, batch)
    real = computed = 0
    for b in range(steps):  # dynamic padding: every row of a batch padded to its longest
        chunk = [lengths[i] for i in order[b * batch : (b + 1) * batch]]
        real, computed = real + sum(chunk), computed + len(chunk) * max(chunk)
    return real / computed, steps


def loss_check(auto, naive) -> str:
    """Final losses differ by batch order; the bar is the step-to-step spread of naive's own loss."""
    import statistics

    tail = naive.losses[len(naive.losses) // 2 :]
    noise = statistics.pstdev(tail) if len(tail) > 1 else 0.0
    diff = abs(auto.final_loss - naive.final_loss)
    ok = diff <= 2 * noise
    return (
        f"- final loss (mean of the last 10% of steps): auto {auto.final_loss:.3f} "
        f"vs naive {naive.final_loss:.3f}, "
        f"difference {diff:.3f} vs 2 x {noise:.3f} (std of naive's per-step loss over the second half) -> "
        f"{'MET (within noise)' if ok else '**MISSED**'}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true", help="tiny model and data: a smoke run (docs not written)")
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=1, help="rounded up to whole length-group cycles (default: one cycle)")
    ap.add_argument(
        "--only", choices=["classification-users", "classification-longtail", "sft-longtail"], action="append"
    )
    ap.add_argument("--no-docs", action="store_true", help="print the tables, leave docs/benchmarks.md as it is")
    add_threads_arg(ap)
    args = ap.parse_args()
    set_threads(args.threads)
    if args.small:
        args.steps = min(args.steps, 3)
    runs = args.only or ["classification-users", "classification-longtail", "sft-longtail"]
    for name in runs:
        task, profile = name.split("-")
        _, body = run(task, profile, args)
        if not (args.small or args.no_docs):
            write_section(f"training-{name}", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
