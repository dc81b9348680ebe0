"""A small synthetic classification task that a tiny model learns in a few hundred CPU steps.

Eight classes, balanced (majority share 0.125). Each row is a few filler words followed by its
class keyword; the keyword is the last word, so a last-token classifier must pool the right
token to learn it, and a wrong pooling (a pad, another packed sample's token) cannot.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

KEYWORDS = ["fox", "dog", "password", "card", "parcel", "subscription", "spam", "order"]
FILLER = ["the", "quick", "brown", "jumps", "over", "lazy", "please", "reset", "my", "where", "is", "today"]
MAJORITY = 1 / len(KEYWORDS)
# "Far above majority": 0.9 accuracy on 8 balanced classes (majority 0.125).
ACCURACY_BAR = 0.9


def learnable_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = KEYWORDS[i % len(KEYWORDS)]
        words = [rng.choice(FILLER) for _ in range(rng.randint(1, 6))] + [label]
        rows.append({"id": f"r{i:04d}", "text": " ".join(words), "label": f"c_{label}"})
    rng.shuffle(rows)
    return rows


def write_learnable_csvs(root: Path, n_train: int = 320, n_val: int = 64) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    paths = {"train": root / "train.csv", "validation": root / "val.csv"}
    pd.DataFrame(learnable_rows(n_train, seed=1)).to_csv(paths["train"], index=False)
    pd.DataFrame(learnable_rows(n_val, seed=2)).to_csv(paths["validation"], index=False)
    return paths


def learnable_config(root: Path, model_dir: Path, **sections: Any) -> dict[str, Any]:
    data = write_learnable_csvs(root / "data")
    cfg: dict[str, Any] = {
        "name": "learn",
        "output_dir": str(root / "runs"),
        "task": {"type": "classification"},
        "data": {
            "train_file": str(data["train"]),
            "validation_file": str(data["validation"]),
            "max_length": 16,
            "cache_dir": str(root / "cache"),
        },
        "model": {"name_or_path": str(model_dir)},
        "training": {
            "num_train_epochs": 6,
            "per_device_train_batch_size": 16,
            "learning_rate": 5e-3,
            "warmup_steps": 0,
            "logging_steps": 5,
            "eval_strategy": "no",
            "save_strategy": "no",
            "load_best_model_at_end": False,
            "optim": "adamw_torch",
        },
        "tracking": {"backend": "none"},
        "doctor": {"enabled": False},
    }
    for key, value in sections.items():
        cfg[key] = {**cfg.get(key, {}), **value} if isinstance(value, dict) else value
    return cfg


def write_yaml(path: Path, cfg: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


def losses(run_dir: Path) -> list[float]:
    """Training losses logged in the run's history.jsonl, in step order."""
    import json

    out = []
    for line in (run_dir / "history.jsonl").read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        if "loss" in rec and "eval_loss" not in rec:
            out.append(float(rec["loss"]))
    return out
