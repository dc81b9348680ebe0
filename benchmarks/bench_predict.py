"""Benchmark 4: batched prediction (what `tunelab predict` does) against a naive one-row-at-a-time loop.

- classification: the Task's `predict` (length-ordered batches, inference.batch_size) vs
  `model(**tokenizer(text))` per row, on a Qwen3-shaped classifier (4 layers x 256, 280 labels);
- generation: the Task's batched `generate` (left-padded, length-ordered) vs `model.generate`
  per row, on a Qwen3-shaped causal LM; min_new_tokens = max_new_tokens so both do the same work.
Random-init models and an in-process BPE tokenizer (tests/tiny.py): speed, not quality.

    .venv/bin/python benchmarks/bench_predict.py            # writes docs/benchmarks.md
    .venv/bin/python benchmarks/bench_predict.py --small
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, add_threads_arg, load_note, plan_for, set_threads, stamp, verdict, write_section

sys.path.insert(0, str(ROOT / "tests"))
SIZE = dict(
    hidden_size=256,
    intermediate_size=768,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=64,
)


def _texts(n: int, seed: int = 0) -> list[str]:
    from tiny import CORPUS

    rng = random.Random(seed)
    return [" ".join(rng.choice(CORPUS) for _ in range(rng.randint(1, 12))) for _ in range(n)]


def _save(root: Path, head: str, num_labels: int | None = None) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    from tiny import make_tokenizer, tiny_config

    tok = make_tokenizer(chat_template=head == "causal")
    cfg = tiny_config("qwen3", tok, num_labels=num_labels, **SIZE)
    torch.manual_seed(0)
    cls = AutoModelForSequenceClassification if head == "classification" else AutoModelForCausalLM
    out = root / head
    cls.from_config(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def classification(root: Path, n: int) -> tuple[float, float]:
    import pandas as pd
    import torch

    from tunelab.models.tokenizer import load_tokenizer
    from tunelab.tasks.base import task_from_config

    path = _save(root, "classification", num_labels=280)
    cfg, plan = plan_for("classification")
    cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"name_or_path": str(path)})})
    labels = [f"l{i}" for i in range(280)]
    task = task_from_config(cfg, labels)
    tokenizer = load_tokenizer(cfg)
    model = task.build_model(cfg, plan, tokenizer).eval()
    frame = pd.DataFrame({"id": range(n), "text": _texts(n)})
    t0 = time.perf_counter()
    task.predict(model, tokenizer, frame, cfg, plan)
    batched = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    with torch.inference_mode():
        for text in frame["text"]:
            _ = model(**tokenizer(text, truncation=True, max_length=cfg.data.max_length, return_tensors="pt")).logits
    naive = n / (time.perf_counter() - t0)
    return batched, naive


def generation(root: Path, n: int, new_tokens: int) -> tuple[float, float]:
    import pandas as pd
    import torch

    from tunelab.models.tokenizer import load_tokenizer
    from tunelab.tasks.base import task_from_config

    path = _save(root, "causal")
    cfg, plan = plan_for("sft")
    gen = cfg.inference.generation.model_copy(update={"max_new_tokens": new_tokens, "min_new_tokens": new_tokens})
    cfg = cfg.model_copy(
        update={
            "model": cfg.model.model_copy(update={"name_or_path": str(path)}),
            "inference": cfg.inference.model_copy(update={"generation": gen}),
        }
    )
    task = task_from_config(cfg)
    tokenizer = load_tokenizer(cfg)
    model = task.build_model(cfg, plan, tokenizer).eval()
    frame = pd.DataFrame({"id": range(n), "instruction": _texts(n, seed=1), "response": ["x"] * n})
    t0 = time.perf_counter()
    task.generate(model, tokenizer, frame, cfg, plan)
    batched = n / (time.perf_counter() - t0)
    prompts = [task.example(tokenizer, row, None)["input_ids"] for row in task.rows(frame)]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    t0 = time.perf_counter()
    with torch.inference_mode():
        for ids in prompts:
            model.generate(
                torch.tensor([ids]),
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=False,
                pad_token_id=pad,
            )
    naive = n / (time.perf_counter() - t0)
    return batched, naive


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true")
    add_threads_arg(ap)
    args = ap.parse_args()
    set_threads(args.threads)
    n_cls, n_gen, new_tokens = (64, 16, 8) if args.small else (2000, 128, 32)
    load = load_note()
    with tempfile.TemporaryDirectory() as tmp:
        c_batched, c_naive = classification(Path(tmp), n_cls)
        g_batched, g_naive = generation(Path(tmp), n_gen, new_tokens)
    body = (
        f"### Prediction: batched vs one row at a time\n\n{stamp(load)}\n\n"
        "| workload | batched rows/s | naive loop rows/s | speed-up |\n|---|---|---|---|\n"
        f"| classification, {n_cls} rows (batch 32, length-ordered) | {c_batched:,.1f} | {c_naive:,.1f} | "
        f"{c_batched / c_naive:.1f}x |\n"
        f"| generation, {n_gen} prompts x {new_tokens} new tokens | {g_batched:,.2f} | {g_naive:,.2f} | "
        f"{g_batched / g_naive:.1f}x |\n\n"
        + verdict(c_batched / c_naive, 3.0, "classification batched / naive")
        + "\n"
        + verdict(g_batched / g_naive, 3.0, "generation batched / naive")
        + "\n"
    )
    print(body)
    if not args.small:
        write_section("predict", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
