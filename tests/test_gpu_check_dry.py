"""`scripts/gpu-check.sh --dry-run`: the GPU check's code path on CPU with tiny shapes, so it cannot rot.

Also the FLOPs count behind MFU, checked against the parameters of a real (shape-only) model.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_dry_run_runs_the_same_code_path_on_cpu(tmp_path):
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "GPU_CHECK_OUT": str(tmp_path / "out"),
        "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
    }
    res = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu-check.sh"), "--dry-run"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    collected = re.search(r"(\d+) tests? collected", res.stdout)
    assert collected and int(collected.group(1)) >= 10, res.stdout[-2000:]  # the gpu tests exist and import
    assert re.search(r"bench \(Qwen3-4B-shaped classifier\): \d+ s", res.stdout)  # each part timed
    report = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    rows = report["rows"]
    names = {(r["mode"], r["configuration"].split(" (")[0]) for r in rows}
    expected = {"naive", "grouped", "packed", "auto", "plain HF Trainer"}
    assert names == {(m, c) for m in ("full", "lora") for c in expected}
    for r in rows:
        assert r["samples_per_s"] > 0 and r["tokens_per_s"] > 0 and r["peak_memory_mb"] > 0, r
        assert math.isfinite(r["mfu"]) and 0 < r["mfu"] < 1, r
        assert math.isfinite(r["final_loss"])
    assert all(r["lora_params"] > 0 for r in rows if r["mode"] == "lora" and r["configuration"] != "plain HF Trainer")
    packed = next(r for r in rows if r["mode"] == "full" and r["configuration"] == "packed")
    assert packed["padding_efficiency"] == 1.0
    md = (tmp_path / "out" / "gpu_check.md").read_text()
    assert "| MFU |" in md and "Time per part" in md and "torch" in md  # device stamp + versions


def test_flops_count_matches_the_models_own_matmul_parameters():
    import torch
    from torch import nn
    from transformers import AutoModelForSequenceClassification

    from tunelab.bench.flops import matmul_params, training_flops
    from tunelab.bench.gpu_check import model_config

    config = model_config(dry_run=False)  # the Qwen3-4B shapes
    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(config)
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))
    assert matmul_params(config) == linear
    assert 3.6e9 < linear < 3.7e9  # Qwen3-4B: ~3.6B non-embedding parameters
    # One sample of t tokens: 6 N t for the matmuls plus 12 L H Q t^2 for attention.
    t = 211
    expected = 6 * linear * t + 12 * 36 * 32 * 128 * t * t
    assert training_flops(config, [t]) == expected
    # LoRA: the frozen base costs 4 N per token, adapters 6 per parameter.
    assert training_flops(config, [t], lora_params=1000) == 4 * linear * t + 6 * 1000 * t + 12 * 36 * 32 * 128 * t * t
