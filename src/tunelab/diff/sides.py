"""The two things being compared: a finished run directory, or a config not trained yet.

A run side is read from the files training wrote (config.yaml, run.json, runtime_plan.json,
data_manifest.json, token_lengths.json, preflight.json, history.jsonl, metrics.json). A config side
has only what can be known before training: the resolved config, the runtime plan this machine
would choose, and the hashes of its data files; its speed and results are estimated, never
invented.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunelab import runs
from tunelab.errors import DeviceError, RunDirError
from tunelab.io import read_jsonl, sha256_file
from tunelab.run_summary import read_json

LENGTHS = "token_lengths.json"


@dataclass
class Side:
    label: str  # "A" | "B"
    path: Path
    kind: str  # "run" | "config"
    config: dict[str, Any]
    plan: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)
    lengths: dict[str, Any] = field(default_factory=dict)
    findings: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    model_config: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def is_run(self) -> bool:
        return self.kind == "run"

    def get(self, dotted: str) -> Any:
        """A config value by dotted key (`training.warmup_steps`); None when absent."""
        node: Any = self.config
        for part in dotted.split("."):
            if not isinstance(node, dict):
                return None
            node = node.get(part)
        return node

    def records(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.history if r.get("kind") == kind]

    def finding(self, finding_id: str) -> dict[str, Any] | None:
        return next((f for f in self.findings if f.get("id") == finding_id), None)


def load_side(path: str | Path, label: str) -> Side:
    """A run directory (has run.json; `latest:NAME` for the newest run of a config) or a YAML config."""
    path = runs.resolve_run_ref(path)
    if path.is_dir():
        return _run_side(path, label)
    if path.is_file() and path.suffix.lower() in (".yaml", ".yml"):
        return _config_side(path, label)
    raise RunDirError(
        f"{path}: neither a run directory nor a YAML config",
        hint="pass run directories printed by `tunelab train`, or a run and a config file",
    )


def _run_side(path: Path, label: str) -> Side:
    run = runs.load_run(path)  # one clear error for anything that is not a run of this format
    preflight = read_json(path / runs.PREFLIGHT)
    findings = preflight.get("findings", []) if isinstance(preflight, dict) else []
    model_cfg = read_json(path / runs.MODEL / "config.json") or _model_config(run.config.model.name_or_path)
    return Side(
        label=label,
        path=path,
        kind="run",
        config=run.config.model_dump(mode="json"),
        plan=read_json(path / runs.PLAN) or {},
        info=run.info,
        manifest=read_json(path / runs.MANIFEST) or {},
        lengths=read_json(path / LENGTHS) or {},
        findings=[f for f in findings if isinstance(f, dict)],
        history=read_jsonl(path / runs.HISTORY) if (path / runs.HISTORY).is_file() else [],
        metrics=read_json(path / runs.METRICS) or {},
        model_config=model_cfg or {},
    )


def _config_side(path: Path, label: str) -> Side:
    from tunelab.config import load_config
    from tunelab.runtime.plan import decide_plan

    cfg = load_config(path)
    side = Side(label=label, path=path, kind="config", config=cfg.model_dump(mode="json"))
    try:
        # What this machine would run it with; through JSON so tuples compare equal to a run's lists.
        side.plan = json.loads(json.dumps(decide_plan(cfg).to_dict()))
    except DeviceError as exc:
        side.notes.append(f"runtime plan not decidable here: {exc.message}")
    side.manifest = {"files": _file_hashes(cfg.data.model_dump())}
    side.model_config = _model_config(cfg.model.name_or_path) or {}
    from tunelab.runtime.versions import library_versions

    side.info = {"versions": library_versions()}  # what would train it here
    return side


def _file_hashes(data: dict[str, Any]) -> dict[str, Any]:
    files: dict[str, Any] = {}
    for split in ("train", "validation", "test"):
        name = data.get(f"{split}_file")
        if name and Path(name).is_file():
            files[split] = {"path": name, "sha256": sha256_file(name), "bytes": Path(name).stat().st_size}
    return files


def _model_config(name_or_path: str) -> dict[str, Any] | None:
    """The model's config.json when it is a local directory (never fetched from the Hub)."""
    candidate = Path(name_or_path) / "config.json"
    return read_json(candidate) if candidate.is_file() else None


# ---------------------------------------------------------------------------- measured numbers
def number(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value))
    return float(value) if ok else None


def summary_value(side: Side, key: str) -> float | None:
    """A whole-training number: the summary record, else the mean over the logged train records."""
    for rec in reversed(side.records("summary")):
        if number(rec.get(key)) is not None:
            return number(rec[key])
    values = [number(r.get(key)) for r in side.records("train")]
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def setup_value(side: Side, key: str) -> Any:
    """What training decided at start (history `setup` record), e.g. the resolved batching."""
    for rec in reversed(side.records("setup")):
        if key in rec:
            return rec[key]
    return None


def effective_batch(side: Side) -> int:
    recorded = number(setup_value(side, "effective_batch_size"))
    if recorded:
        return int(recorded)
    t = side.config.get("training", {})
    world = int((side.plan.get("capabilities") or {}).get("world_size") or 1)
    return int(t.get("per_device_train_batch_size", 1)) * int(t.get("gradient_accumulation_steps", 1)) * world
