"""LoRA vs full fine-tune of the same tiny decoder classifier on CPU: samples/s and peak memory.

One Qwen3-shaped classifier (random init, 4 layers x 256, 32,768-token vocabulary, 280 classes),
built by tunelab's own classification task (so LoRA is applied exactly as `tunelab train` applies
it: peft SEQ_CLS, head trained in full) and trained by tunelab's trainer on the same synthetic
token rows, once with full fine-tuning and once with LoRA r=16 on all projections. Each variant
runs in its own process, so each peak RSS (VmHWM) is that variant's alone; both are measured
in one invocation, side by side.

    .venv/bin/python benchmarks/bench_lora.py --threads 1          # writes its docs/benchmarks.md section
    .venv/bin/python benchmarks/bench_lora.py --small --threads 1  # seconds, docs untouched
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

from common import add_threads_arg, load_note, set_threads, stamp, write_section

NUM_LABELS = 280
VOCAB = 32768


def _model_dir(root: Path) -> Path:
    from common import pad_tokenizer
    from transformers import AutoConfig, AutoModelForCausalLM

    tok = pad_tokenizer()
    cfg = AutoConfig.for_model(
        "qwen3",
        hidden_size=256,
        intermediate_size=768,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=64,
        vocab_size=VOCAB,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
    )
    out = root / "qwen3-4x256"
    AutoModelForCausalLM.from_config(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def run_variant(model_dir: str, lora: bool, rows: int, steps: int, threads: int | None) -> dict:
    """In a child process: build through tunelab's task, train `steps`, report rate and peak RSS."""
    from datasets import Dataset

    from tunelab.config.loader import validate_config
    from tunelab.models.tokenizer import load_tokenizer
    from tunelab.runtime.memory import peak_rss_bytes
    from tunelab.runtime.plan import decide_plan
    from tunelab.tasks.base import build_seeded_model, task_from_config

    set_threads(threads)
    raw = {
        "task": {"type": "classification"},
        "data": {"train_file": "unused.csv", "max_length": 128, "batching": "grouped"},
        "model": {"name_or_path": model_dir, "lora": {"enabled": lora, "r": 16, "alpha": 32, "dropout": 0.0}},
        "training": {
            "per_device_train_batch_size": 16,
            "max_steps": steps,
            "learning_rate": 1e-4,
            "logging_steps": steps,
            "eval_strategy": "no",
            "save_strategy": "no",
            "load_best_model_at_end": False,
            "optim": "adamw_torch",
        },
        "tracking": "none",
    }
    cfg = validate_config(raw)
    plan = decide_plan(cfg)
    tok = load_tokenizer(cfg)
    task = task_from_config(cfg, [f"c{i}" for i in range(NUM_LABELS)])
    # Everything the trainer will import, imported now: the baseline is the libraries, so the
    # peak above it is the model, its gradients/optimizer states and the activations.
    import accelerate  # noqa: F401
    import peft  # noqa: F401
    import psutil
    import transformers.trainer  # noqa: F401

    import tunelab.training.callbacks
    import tunelab.training.checkpointing
    import tunelab.training.trainer  # noqa: F401

    rss0 = psutil.Process().memory_info().rss
    model = build_seeded_model(task, cfg, plan, tok)
    rng = random.Random(0)
    lengths = [rng.randint(24, 128) for _ in range(rows)]
    data = Dataset.from_dict(
        {
            "input_ids": [[rng.randrange(10, VOCAB) for _ in range(n)] for n in lengths],
            "attention_mask": [[1] * n for n in lengths],
            "labels": [rng.randrange(NUM_LABELS) for _ in lengths],
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        trainer = task.build_trainer(
            cfg=cfg,
            plan=plan,
            model=model,
            tokenizer=tok,
            train_dataset=data,
            eval_dataset=None,
            output_dir=Path(tmp) / "ck",
        )
        out = trainer.train()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {
        "samples_per_s": out.metrics["train_samples_per_second"],
        "peak_rss_mib": peak_rss_bytes() / 2**20,
        "peak_over_baseline_mib": (peak_rss_bytes() - rss0) / 2**20,
        "trainable": trainable,
        "total": total,
        "precision": plan.precision,
        "weights": plan.weight_dtype,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true", help="a smoke run: few steps, docs untouched")
    ap.add_argument("--steps", type=int, default=None, help="optimizer steps per variant (default 40)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    add_threads_arg(ap)
    args = ap.parse_args()
    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(run_variant(**spec)))
        return 0
    steps = args.steps or (4 if args.small else 40)
    note = load_note()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = str(_model_dir(Path(tmp)))
        for name, lora in (("full fine-tune", False), ("LoRA r=16 (+ head)", True)):
            spec = {"model_dir": model_dir, "lora": lora, "rows": steps * 16, "steps": steps, "threads": args.threads}
            proc = subprocess.run(
                [sys.executable, __file__, "--child", json.dumps(spec)],
                capture_output=True,
                text=True,
                check=True,
            )
            results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    lines = [
        "| variant | trainable / total params | samples/s | peak RSS (MiB) | peak above the libraries (MiB) |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['trainable']:,} / {r['total']:,} | {r['samples_per_s']:.1f} | {r['peak_rss_mib']:.0f} "
            f"| {r['peak_over_baseline_mib']:.0f} |"
        )
    full, lora = results["full fine-tune"], results["LoRA r=16 (+ head)"]
    body = "\n".join(
        [
            "## 9. LoRA vs full fine-tune: the same tiny decoder classifier",
            "",
            stamp(note),
            "",
            f"Qwen3-shaped classifier (random init, 4 layers x 256, vocabulary {VOCAB:,}, {NUM_LABELS} classes), "
            f"{steps} steps at batch 16, lengths 24-128 (grouped), precision {full['precision']} "
            f"(weights {full['weights']}), through tunelab's own task and trainer; each variant in its own process.",
            "",
            *lines,
            "",
            f"LoRA: {lora['samples_per_s'] / full['samples_per_s']:.2f}x the samples/s and "
            f"{lora['peak_over_baseline_mib'] / max(full['peak_over_baseline_mib'], 1):.2f}x the training memory "
            "(peak RSS above the process with its libraries loaded) of the full fine-tune. LoRA skips the weight gradients "
            "and AdamW states of the frozen base (12 bytes per frozen parameter, about "
            f"{12 * (full['trainable'] - lora['trainable']) / 2**20:.0f} MiB here) but still runs the forward "
            "and backward through it, and its adapters keep their inputs for the backward pass. Most of the "
            "process's RSS is the libraries (torch, transformers, datasets), the same for both. "
            + (
                "On a model this small the saved states are smaller than what the adapters add; the saving "
                "grows with the frozen base (the doctor's estimate for a 4B model is in the README). "
                if lora["peak_over_baseline_mib"] >= full["peak_over_baseline_mib"]
                else ""
            )
            + "`python benchmarks/bench_lora.py --threads 1` reproduces it.",
        ]
    )
    print(body)
    if not args.small:
        write_section("lora", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
