"""`tunelab train` under `accelerate launch` with 2 CPU processes (DDP over gloo).

One run directory, files written once (by the main process), one tracked MLflow run, and the
same number of optimizer steps and a consistent result compared with one process.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tiny import tiny_model_dir

ROOT = Path(__file__).resolve().parents[1]
LABELS = ["billing", "account", "shipping"]
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
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _setup(tmp_path: Path) -> Path:
    model = tiny_model_dir(tmp_path, "qwen3", head="classification", num_labels=len(LABELS))
    rng = random.Random(0)
    lines = ["id,text,label"]
    for i in range(64):
        label = LABELS[i % 3]
        lines.append(f"{i},{label} " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 20))) + f",{label}")
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        f"name: so\noutput_dir: {tmp_path / 'one'}\n"
        "task: {type: classification}\n"
        f"data: {{train_file: {tmp_path / 'train.csv'}, max_length: 32, cache_dir: {tmp_path / 'cache'}, batching: dynamic}}\n"
        f"model: {{name_or_path: {model}}}\n"
        "training: {num_train_epochs: 1, per_device_train_batch_size: 8, logging_steps: 1, learning_rate: 1e-3,\n"
        "           eval_strategy: epoch, save_strategy: epoch, warmup_steps: 0}\n"
        f"tracking: {{backend: mlflow, uri: 'sqlite:///{tmp_path / 'mlflow.db'}', experiment: so}}\n"
        "doctor: {enabled: false}\n",
        encoding="utf-8",
    )
    return cfg


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc


def _only_run_dir(base: Path) -> Path:
    dirs = [p for p in base.iterdir() if p.is_dir()]
    assert len(dirs) == 1, f"expected one run directory, got {[p.name for p in dirs]}"
    return dirs[0]


@pytest.mark.slow
def test_two_cpu_processes_write_once_and_match_one_process(tmp_path):
    cfg = _setup(tmp_path)
    py = sys.executable
    _run([py, "-m", "tunelab.cli", "train", str(cfg)], tmp_path)
    one = _only_run_dir(tmp_path / "one")
    # Same global batch: 2 processes x 4 = 1 process x 8, so the same number of optimizer steps.
    _run(
        [
            py,
            "-m",
            "accelerate.commands.launch",
            "--config_file",
            str(ROOT / "examples/accelerate/ddp_cpu_2proc.yaml"),
            "--main_process_port",
            str(_free_port()),
            "-m",
            "tunelab.cli",
            "train",
            str(cfg),
            "--set",
            f"output_dir={tmp_path / 'two'}",
            "--set",
            "training.per_device_train_batch_size=4",
        ],
        tmp_path,
    )
    two = _only_run_dir(tmp_path / "two")

    plan = json.loads((two / "runtime_plan.json").read_text())
    assert plan["capabilities"]["world_size"] == 2  # really ran as two processes
    info = json.loads((two / "run.json").read_text())
    assert info["status"] == "finished"
    history = [json.loads(line) for line in (two / "history.jsonl").read_text().splitlines() if line.strip()]
    train_steps = [h["step"] for h in history if "loss" in h]
    assert len(train_steps) == len(set(train_steps)) > 0  # each step logged once, not once per process
    preds = (two / "predictions" / "validation.jsonl").read_text().splitlines()
    assert len(preds) == len((one / "predictions" / "validation.jsonl").read_text().splitlines())
    assert sorted(p.name for p in (two / "checkpoints").iterdir() if not p.name.startswith(".")) == sorted(
        p.name for p in (one / "checkpoints").iterdir() if not p.name.startswith(".")
    )
    assert (two / "model" / "config.json").is_file()

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("so")
    names = sorted(r.info.run_name for r in client.search_runs([exp.experiment_id]))
    assert names == sorted([one.name, two.name])  # one tracked run per training, not per process

    m1 = json.loads((one / "metrics.json").read_text())
    m2 = json.loads((two / "metrics.json").read_text())
    state = lambda d: json.loads(next(d.glob("checkpoints/checkpoint-*/trainer_state.json")).read_text())  # noqa: E731
    assert state(two)["global_step"] == state(one)["global_step"]
    # Different sample order per process, same data, same init: the results agree closely.
    assert abs(m2["train"]["train_loss"] - m1["train"]["train_loss"]) < 0.1
    assert abs(m2["validation"]["accuracy"] - m1["validation"]["accuracy"]) <= 0.35
