"""Shared helpers of the reliability tests (test_rel_*): a tiny project and a CLI runner.

The project is a 3-class classification config on a tiny BERT (hidden 32) with a separate
validation file, 2 epochs of 6 steps, a checkpoint every 3 steps: small enough for CI, big enough
to cross an epoch boundary and rotate checkpoints.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

TUNELAB = str(Path(sys.executable).with_name("tunelab"))
WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
    "please",
    "reset",
    "my",
    "password",
    "card",
    "charged",
    "twice",
    "parcel",
    "안녕하세요",
    "배송",
]
# Timing keys legitimately differ between two runs; everything else must be identical.
TIMING = (
    # Per-session measurements (a resumed run measures only its own steps), like the rates below.
    "data_wait_share",
    "step_time_s",
    "padding_efficiency",
    "elapsed_s",
    "samples_per_s",
    "tokens_per_s",
    "train_runtime",
    "train_samples_per_second",
    "train_steps_per_second",
    "samples_per_second",
    "eval_runtime",
    "eval_samples_per_second",
    "eval_steps_per_second",
    "peak_memory_mb",
    "train_runtime_s",
)


def write_rows(path: Path, n: int, offset: int = 0) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text", "label"])
        for i in range(offset, offset + n):
            label = "abc"[i % 3]
            words = [WORDS[(i * 5 + j * 3) % len(WORDS)] for j in range(2 + (i * 7) % 11)]
            w.writerow([i, " ".join(words) + f" {label}", label])


def make_project(root: Path, **training: Any) -> Path:
    """Model dir + data + config under `root`; returns the config path."""
    from tiny import tiny_model_dir

    root.mkdir(parents=True, exist_ok=True)
    model = tiny_model_dir(root / "model", "bert", head="classification", num_labels=3)
    write_rows(root / "train.csv", 24)
    write_rows(root / "valid.csv", 6, offset=100)
    t = {
        "per_device_train_batch_size": 4,
        "num_train_epochs": 2,
        "save_strategy": "steps",
        "save_steps": 3,
        "eval_strategy": "steps",
        "eval_steps": 3,
        "logging_steps": 1,
        "learning_rate": 0.001,
        "save_total_limit": 2,
        **training,
    }
    cfg = {
        "name": "rel",
        "output_dir": str(root / "runs"),
        "task": {"type": "classification"},
        "data": {
            "train_file": str(root / "train.csv"),
            "validation_file": str(root / "valid.csv"),
            "max_length": 32,
            "cache_dir": str(root / "cache"),
        },
        "model": {"name_or_path": str(model)},
        "training": t,
        "tracking": "none",
        "doctor": {"enabled": False},
    }
    path = root / "cfg.yaml"
    path.write_text(json.dumps(cfg), encoding="utf-8")  # JSON is YAML
    return path


def tunelab(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    full_env = {
        **os.environ,
        "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
        "TUNELAB_FAULT": "",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        **(env or {}),
    }
    return subprocess.run([TUNELAB, *args], capture_output=True, text=True, timeout=timeout, env=full_env, cwd=cwd)


def weights(path: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(path))


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    diff = {k: (wa[k] - wb[k]).abs().max().item() for k in wa if not bool((wa[k] == wb[k]).all())}
    assert not diff, f"weights differ (max abs diff per tensor): {diff}"


def strip_timing(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: strip_timing(v) for k, v in obj.items() if k not in TIMING}
    if isinstance(obj, list):
        return [strip_timing(v) for v in obj]
    return obj


def history(run_dir: Path) -> list[dict[str, Any]]:
    from tunelab.io import read_jsonl

    return strip_timing(read_jsonl(run_dir / "history.jsonl"))


def assert_same_run(a: Path, b: Path) -> None:
    """Bit-identical final model, metrics and per-step history (timings aside)."""
    assert_same_weights(a / "model" / "model.safetensors", b / "model" / "model.safetensors")
    ma = strip_timing(json.loads((a / "metrics.json").read_text()))
    mb = strip_timing(json.loads((b / "metrics.json").read_text()))
    assert ma == mb
    assert history(a) == history(b)
