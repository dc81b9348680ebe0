"""Collectors: read what a run directory holds into one plain summary (no plotting, no HTML).

Writers differ in key names (HF's `train_runtime`, our `train_time_s`...); `_pick` looks for the
first of several aliases so a report never breaks because a key moved.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tunelab.io import read_jsonl

_SKIP_METRICS = ("runtime", "per_second", "samples", "steps", "epoch", "memory", "loss_curve")


@dataclass
class RunSummary:
    path: Path
    name: str
    task: str | None = None
    model: str | None = None
    lora: bool = False
    config: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)  # flat, "eval_"/"validation." stripped
    history: list[dict[str, Any]] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)
    findings: list[dict[str, Any]] = field(default_factory=list)
    plan: dict[str, Any] = field(default_factory=dict)

    @property
    def primary_metric(self) -> str | None:
        name = self.metrics.get("primary_metric")
        if not name:  # metrics written without it: the task's own, from the run's config
            from tunelab.config.schema import task_section

            section = task_section(self.config.get("task") or {"type": self.task})
            name = section.primary_metric if section is not None else None
        return name if isinstance(name, str) else None

    @property
    def primary_value(self) -> float | None:
        return _num(self.metrics.get(self.primary_metric or ""))

    def headline(self) -> dict[str, Any]:
        """Numbers for the comparison table."""
        return {
            "parameters": _pick(
                self.info, self.metrics, keys=("num_parameters", "parameters", "total_parameters", "params")
            ),
            "trainable_parameters": _pick(
                self.info, self.metrics, keys=("trainable_parameters", "num_trainable_parameters", "trainable_params")
            ),
            "train_time_s": _pick(self.info, self.metrics, keys=("train_time_s", "train_runtime", "train_runtime_s")),
            "samples_per_s": _pick(
                self.info, self.metrics, keys=("train_samples_per_second", "samples_per_second", "samples/s")
            )
            or _last(self.history, "samples_per_s")
            or _last(self.history, "samples/s"),
            "peak_memory_mb": _pick(
                self.info,
                self.metrics,
                keys=("peak_memory_mb", "peak_mem_mb", "peak_memory_MB", "train_peak_memory_mb"),
            ),
        }

    def scores(self) -> dict[str, float]:
        """Quality metrics only (throughput, runtime and counters left out)."""
        return {
            k: v
            for k, v in self.metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and not any(s in k for s in _SKIP_METRICS)
        }


def read_json(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def collect_run(path: Path) -> RunSummary:
    path = Path(path)
    config = _read_yaml(path / "config.yaml")
    info = read_json(path / "run.json") or {}
    task = (config.get("task") or {}).get("type") or info.get("task")
    model_cfg = config.get("model") or {}
    preflight = read_json(path / "preflight.json")
    findings = preflight.get("findings", []) if isinstance(preflight, dict) else (preflight or [])
    return RunSummary(
        path=path,
        name=info.get("name") or config.get("name") or path.name,
        task=task,
        model=model_cfg.get("name_or_path"),
        lora=bool((model_cfg.get("lora") or {}).get("enabled")),
        config=config,
        info=info,
        metrics=flat_metrics(read_json(path / "metrics.json") or {}),
        history=read_jsonl(path / "history.jsonl"),
        manifest=read_json(path / "data_manifest.json") or {},
        findings=[f for f in findings if isinstance(f, dict)],
        plan=read_json(path / "runtime_plan.json") or {},
    )


def flat_metrics(raw: dict[str, Any]) -> dict[str, Any]:
    """{"validation": {"macro_f1": .5}} / {"eval_macro_f1": .5} -> {"macro_f1": .5}; validation wins."""
    out: dict[str, Any] = {}
    nested = {k: v for k, v in raw.items() if isinstance(v, dict)}
    for k, v in raw.items():
        if not isinstance(v, dict):
            out[k[5:] if k.startswith("eval_") else k] = v
    for section in ("train", "test", "validation", "eval"):  # later wins
        for k, v in (nested.get(section) or {}).items():
            if not isinstance(v, (dict, list)):
                key = k[5:] if k.startswith("eval_") else k
                if section not in ("validation", "eval") and not key.startswith(f"{section}_"):
                    key = f"{section}_{key}"
                out[key] = v
    for k, v in nested.items():
        if k not in ("train", "test", "validation", "eval"):
            out[k] = v  # per-class reports, confusion matrices
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def _pick(*sources: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for src in sources:
        for k in keys:
            if src.get(k) is not None:
                return src[k]
    return None


def _last(rows: list[dict[str, Any]], key: str) -> Any:
    vals = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
    return sum(vals) / len(vals) if vals else None


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def is_run_dir(path: Path) -> bool:
    return (Path(path) / "run.json").is_file()


def is_experiment_dir(path: Path) -> bool:
    return (Path(path) / "experiment.json").is_file()
