"""Benchmarks 1 and 2: training throughput of the batching strategies, naive vs auto vs ideal.

1. classification, Qwen3-shaped decoder (random init, real Qwen3 vocabulary 151,936, 4 layers x
   256 -> ~42M parameters, most in the embedding), 280 classes, on the `users` and `longtail`
   length profiles;
2. causal-LM SFT (prompt masked with -100) on the `longtail` profile.

    .venv/bin/python benchmarks/bench_training.py               # full run, writes docs/benchmarks.md
    .venv/bin/python benchmarks/bench_training.py --small       # seconds: a smoke run, docs untouched
"""

from __future__ import annotations

import argparse
import random
import sys

from common import PROFILES, ROOT, length_summary, pad_tokenizer, plan_for, profile_lengths, stamp, verdict, write_section

NUM_LABELS = 280


def build_model(task: str, small: bool):
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification

    from tunelab.models.pooling import enable_mask_pooling

    size = dict(vocab_size=2048, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, head_dim=16) if small else \
        dict(vocab_size=151936, hidden_size=256, intermediate_size=768, num_hidden_layers=4, num_attention_heads=4,
             num_key_value_heads=2, head_dim=64)
    cfg = AutoConfig.for_model("qwen3", pad_token_id=0, eos_token_id=2, max_position_embeddings=512,
                               tie_word_embeddings=False, num_labels=NUM_LABELS, **size)
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
    from tunelab.bench.harness import build_specs, run_bench, whole_cycles
    from tunelab.bench.report import markdown_table, ratios, write_results
    from tunelab.data.batching import resolve_strategy

    cfg, plan = plan_for("classification" if task == "classification" else "sft")
    probe = build_model(task, args.small)
    params = sum(p.numel() for p in probe.parameters())
    auto = resolve_strategy(cfg, plan, probe)
    del probe
    max_length = PROFILES[profile]["max_length"]
    rows = synthetic_rows(task, profile, args.rows, 2048 if args.small else 151936)
    steps = whole_cycles(args.steps, len(rows), args.batch)
    specs = build_specs(plan, ["dynamic", "grouped", "packed", "auto"], auto, packable=True)
    print(f"[{task}/{profile}] {params / 1e6:.1f}M params, {len(rows)} rows ({length_summary([r['length'] for r in rows])}), "
          f"batch {args.batch}, {steps} steps per configuration; {auto[1]}", flush=True)
    results = run_bench(lambda: build_model(task, args.small), rows, tokenizer=pad_tokenizer(), task_kind=
                        "classification" if task == "classification" else "causal_lm", max_length=max_length,
                        batch_size=args.batch, steps=steps, specs=specs, device=plan.device, seed=0)
    table = markdown_table(results)
    print(table, flush=True)
    write_results(results, ROOT / "runs" / "benchmarks" / f"{task}-{profile}",
                  {"config": f"{task}-{profile}", "steps": steps, "batch_size": args.batch, "rows": len(rows),
                   "max_length": max_length, "auto": {"strategy": auto[0], "reason": auto[1]}, "plan": plan.to_dict()})
    rel = ratios(results)
    by = {r.name: r for r in results}
    target = 2.0 if profile == "users" else 5.0
    checks = [verdict(rel["auto"]["vs_naive"], target, "auto vs naive samples/s"),
              verdict(rel["auto"]["vs_ideal"], 0.9, "auto vs ideal tokens/s"),
              verdict(by["grouped"].padding_efficiency, 0.97, "grouped padding efficiency"),
              verdict(by["packed"].padding_efficiency, 0.99, "packed padding efficiency"),
              verdict(100 * by["auto"].data_wait_share, 2.0, "auto data wait, % of step time", higher=False),
              f"- final loss: auto {by['auto'].final_loss:.3f} vs naive {by['naive'].final_loss:.3f} "
              f"(mean of the last 10% of steps; different batch orders, so equal within noise is the bar)"]
    body = (f"### {task}, {profile} profile ({PROFILES[profile]['describe']})\n\n"
            f"{params / 1e6:.1f}M-parameter Qwen3-shaped model, {len(rows)} rows "
            f"({length_summary([r['length'] for r in rows])}), batch {args.batch}, {steps} optimizer steps per "
            f"configuration after warm-up; precision from the runtime plan: {plan.precision}. {auto[1]}.\n\n"
            f"{table}\n\n" + "\n".join(checks) + "\n")
    return results, body


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true", help="tiny model and data: a smoke run (docs not written)")
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=50, help="rounded up to whole length-group cycles")
    ap.add_argument("--only", choices=["classification-users", "classification-longtail", "sft-longtail"], action="append")
    args = ap.parse_args()
    if args.rows is None:
        args.rows = 96 if args.small else 3200  # 3200 rows / (16 x 4) -> transformers' full 50-batch cycles
    if args.small:
        args.steps = min(args.steps, 3)
    runs = args.only or ["classification-users", "classification-longtail", "sft-longtail"]
    for name in runs:
        task, profile = name.split("-")
        _, body = run(task, profile, args)
        if not args.small:
            write_section(f"training-{name}", f"{stamp()}\n\n{body}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
