"""Fixture run directories in the documented layout, for experiments/ensemble/report tests.

They are written the way `tunelab train` writes a run dir (config.yaml, run.json, manifest,
metrics, history, preflight, predictions/), with predictions drawn from a known truth so the
tests can assert real arithmetic.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

LABELS = ["billing", "delivery", "login"]


def base_config(train_file: str = "train.csv", model: str = "tiny-model", task: str = "classification") -> dict:
    task_cfg = (
        {"type": task}
        if task == "classification"
        else {"type": task, "input_column": "dialogue", "target_column": "summary"}
    )
    return {
        "name": "base",
        "task": task_cfg,
        "data": {"train_file": train_file, "max_length": 64},
        "model": {"name_or_path": model},
        "training": {"max_steps": 2, "learning_rate": 1e-3},
        "tracking": "none",
    }


def noisy_probs(y: np.ndarray, n_classes: int, accuracy: float, rng: np.random.Generator) -> np.ndarray:
    """Probabilities whose argmax is right on about `accuracy` of rows."""
    probs = rng.dirichlet(np.ones(n_classes), size=len(y)) * 0.5
    right = rng.random(len(y)) < accuracy
    target = np.where(right, y, (y + 1 + rng.integers(0, n_classes - 1, len(y))) % n_classes)
    probs[np.arange(len(y)), target] += 1.0
    return probs / probs.sum(axis=1, keepdims=True)


def write_run(
    run_dir: Path,
    name: str,
    probs_val: np.ndarray,
    y_val: np.ndarray,
    probs_test: np.ndarray | None = None,
    model: str = "tiny-model",
    history_steps: int = 4,
    findings: list | None = None,
) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = base_config(model=model)
    cfg["name"] = name
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    (run_dir / "run.json").write_text(
        json.dumps(
            {
                "tunelab_version": "0.1.0",
                "run_format": 1,
                "name": name,
                "task": "classification",
                "created_utc": "20261123T000000Z",
                "num_parameters": 123456,
                "trainable_parameters": 123456,
            }
        )
    )
    counts = {lab: int((y_val == i).sum()) * 4 for i, lab in enumerate(LABELS)}
    (run_dir / "data_manifest.json").write_text(
        json.dumps(
            {
                "label_names": LABELS,
                "splits": {"train": {"rows": 120, "label_counts": counts}, "validation": {"rows": len(y_val)}},
                "length_stats": {"mean": 21.5, "p50": 20, "p90": 35, "p99": 60, "max": 80},
                "truncation_rate": 0.08,
                "token_lengths": [int(x) for x in np.random.default_rng(0).integers(5, 80, 120)],
            }
        )
    )
    pred = probs_val.argmax(axis=1)
    cm = np.zeros((len(LABELS), len(LABELS)), dtype=int)
    np.add.at(cm, (y_val, pred), 1)  # numpy, not sklearn: child processes in runner tests stay light
    f1 = [2 * cm[i, i] / max(1, cm[i].sum() + cm[:, i].sum()) for i in range(len(LABELS))]
    metrics = {
        "eval_accuracy": float((pred == y_val).mean()),
        "eval_macro_f1": float(np.mean(f1)),
        "train_runtime": 3.5,
        "train_samples_per_second": 40.0,
        "peak_memory_mb": 512.0,
        "per_class": {
            lab: {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": int((y_val == i).sum())}
            for i, lab in enumerate(LABELS)
        },
        "confusion_matrix": cm.tolist(),
        "label_names": LABELS,
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    hist = [
        {
            "step": s,
            "epoch": s / history_steps,
            "loss": 1.1 - 0.1 * s,
            "grad_norm": 2.0 / s,
            "learning_rate": 1e-3 * (1 - s / 10),
            "samples/s": 40.0 + s,
            "tokens/s": 900.0 + s,
        }
        for s in range(1, history_steps + 1)
    ]
    hist.append({"step": history_steps, "epoch": 1.0, "eval_loss": 0.9, "eval_macro_f1": metrics["eval_macro_f1"]})
    (run_dir / "history.jsonl").write_text("".join(json.dumps(h) + "\n" for h in hist))
    (run_dir / "preflight.json").write_text(
        json.dumps(
            {
                "findings": findings
                or [
                    {
                        "id": "imbalance",
                        "severity": "warning",
                        "title": "labels are imbalanced",
                        "evidence": {"ratio": 3.0},
                        "fix": "use class weights",
                    }
                ]
            }
        )
    )
    _write_preds(run_dir / "predictions" / "validation.jsonl", probs_val, y_val)
    if probs_test is not None:
        _write_preds(run_dir / "predictions" / "test.jsonl", probs_test, None, id_offset=1000)
    return run_dir


def _write_preds(path: Path, probs: np.ndarray, y: np.ndarray | None, id_offset: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, p in enumerate(probs):
        row = {"id": f"r{i + id_offset}", "prediction": LABELS[int(p.argmax())], "probs": p.tolist()}
        if y is not None:
            row["label"] = LABELS[int(y[i])]
        rows.append(json.dumps(row))
    path.write_text("\n".join(rows) + "\n")


def write_experiment(
    exp_dir: Path, accuracies: dict[str, float], n: int = 90, seed: int = 0, failed: str | None = None
) -> Path:
    """An experiment dir with ok runs of the given accuracies (+ one failed run) as the runner writes it."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, len(LABELS), n)
    y_test = rng.integers(0, len(LABELS), 30)
    runs = {}
    for name, acc in accuracies.items():
        write_run(exp_dir / "runs" / name, name, noisy_probs(y, 3, acc, rng), y, noisy_probs(y_test, 3, acc, rng))
        runs[name] = {
            "name": name,
            "variant": name,
            "fold": None,
            "status": "ok",
            "run_dir": f"runs/{name}",
            "model": "tiny-model",
            "duration_s": 4.0,
            "attempts": 1,
        }
    variants = [{"name": n, "overrides": {}} for n in accuracies]
    if failed:
        runs[failed] = {
            "name": failed,
            "variant": failed,
            "fold": None,
            "status": "failed",
            "run_dir": f"runs/{failed}",
            "model": "missing/model",
            "log": f"logs/{failed}.log",
            "attempts": 1,
            "error": {"class": "ModelError", "message": "missing/model: model not found"},
            "doctor_finding": {
                "id": "model-path",
                "severity": "error",
                "title": "model path does not exist",
                "fix": "fix model.name_or_path",
            },
            "log_tail": "Traceback...\nerror: missing/model: model not found",
        }
        variants.append({"name": failed, "overrides": {"model.name_or_path": "missing/model"}})
    exp = {
        "format": 1,
        "name": "fixture",
        "task": "classification",
        "kfold": None,
        "variants": variants,
        "runs": runs,
        "spec": "spec.yaml",
    }
    (exp_dir / "experiment.json").write_text(json.dumps(exp))
    return exp_dir
