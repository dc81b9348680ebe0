"""Every recorded fact of the two sides as flat `section.key` -> value, and which differences are noise.

Noise: things that differ between any two runs without changing what is computed (run names,
output and cache directories, timestamps, tracking, file paths whose content hash is equal,
the machine's free memory). They are hidden unless `--all`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tunelab.diff.sides import Side

NOISE_KEYS = {
    "config.name",
    "config.output_dir",
    "config.data.cache_dir",
    "config.baseline",
    "run.name",
    "run.created_utc",
    "run.status",
    "run.mlflow_run_id",
    "run.mlflow_uri",
    "run.train_runtime_s",
    "run.samples_per_second",
    "run.peak_memory_mb",
    "plan.notes",
    "config.inference.batch_size",
    "plan.capabilities.device_memory_bytes",
}
NOISE_PREFIXES = ("config.tracking.", "config.doctor.")
PATH_KEYS = ("config.data.train_file", "config.data.validation_file", "config.data.test_file")


@dataclass
class Difference:
    key: str
    a: Any
    b: Any
    noise: bool
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict) and obj:
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: obj}


def side_facts(side: Side) -> dict[str, Any]:
    facts = flatten(side.config, "config.")
    facts.update(flatten(side.plan, "plan."))
    info = {k: v for k, v in side.info.items() if k not in ("run_format",)}
    facts.update(flatten(info, "run."))
    files = side.manifest.get("files") or {}
    for split, meta in files.items():
        if isinstance(meta, dict):
            facts[f"data.{split}.sha256"] = meta.get("sha256")
            facts[f"data.{split}.rows"] = meta.get("rows")
    for key in ("rows", "split", "label_names", "kfold"):
        if key in side.manifest:
            facts.update(flatten({key: side.manifest[key]}, "data."))
    model = {k: side.model_config.get(k) for k in ("model_type", "hidden_size", "num_hidden_layers", "vocab_size")}
    facts.update(flatten({k: v for k, v in model.items() if v is not None}, "model_config."))
    return facts


def differences(a: Side, b: Side) -> list[Difference]:
    fa, fb = side_facts(a), side_facts(b)
    out = []
    for key in sorted(set(fa) | set(fb)):
        va, vb = fa.get(key), fb.get(key)
        if va == vb:
            continue
        noise, reason = _is_noise(key, va, vb, fa, fb, a, b)
        out.append(Difference(key=key, a=va, b=vb, noise=noise, reason=reason))
    return out


def _is_noise(key: str, va: Any, vb: Any, fa: dict, fb: dict, a: Side, b: Side) -> tuple[bool, str]:
    if key in NOISE_KEYS or key.startswith(NOISE_PREFIXES):
        return True, "bookkeeping (names, paths, timestamps, tracking)"
    if key in PATH_KEYS:
        split = key.split(".")[-1].removesuffix("_file")
        same = fa.get(f"data.{split}.sha256") == fb.get(f"data.{split}.sha256") is not None
        return (True, "same content (sha256)") if same else (False, "")
    if key.startswith("data.") and key.endswith(".rows") and (a.kind != b.kind):
        return True, "row counts are known only after a run"
    if key == "config.model.name_or_path" and va and vb and Path(str(va)).name == Path(str(vb)).name:
        return True, "same model name in another directory"
    if key.startswith("run.") and not key.startswith("run.versions.") and a.kind != b.kind:
        return True, "only a run has run.json"
    if a.kind != b.kind and (va is None or vb is None):
        return True, "known only after training"
    return False, ""
