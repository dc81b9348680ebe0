"""Run directories: `runs/<UTC timestamp>_<name>/` and the files every stage writes there.

Layout (see design.md): config.yaml, run.json, data_manifest.json, runtime_plan.json,
preflight.json, metrics.json, history.jsonl, checkpoints/, model/, predictions/, report.html.
`run.json` marks a directory as a tunelab run and records the tunelab version that wrote it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tunelab.config.loader import parse_yaml, validate_config
from tunelab.config.schema import Config
from tunelab.errors import ConfigError, RunDirError
from tunelab.io import atomic_write_json, atomic_write_text, recover_dir
from tunelab.version import __version__

RUN_FORMAT = 1  # bump when the layout changes incompatibly

CONFIG = "config.yaml"
RUN_INFO = "run.json"
MANIFEST = "data_manifest.json"
PLAN = "runtime_plan.json"
PREFLIGHT = "preflight.json"
METRICS = "metrics.json"
HISTORY = "history.jsonl"
CHECKPOINTS = "checkpoints"
MODEL = "model"
PREDICTIONS = "predictions"


@dataclass
class Run:
    path: Path
    config: Config
    info: dict[str, Any]

    @property
    def label_names(self) -> list[str] | None:
        manifest = self.path / MANIFEST
        if not manifest.exists():
            return None
        data = json.loads(manifest.read_text(encoding="utf-8"))
        return data.get("label_names")

    def file(self, name: str) -> Path:
        return self.path / name


def utc_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def new_run_dir(cfg: Config, root: Path | None = None) -> Path:
    """Create a fresh, unique run directory (never reuses an existing one)."""
    base = Path(root or cfg.output_dir)
    base.mkdir(parents=True, exist_ok=True)
    stamp = utc_stamp()
    for i in range(1000):
        name = f"{stamp}_{cfg.name}" if i == 0 else f"{stamp}_{cfg.name}-{i}"
        path = base / name
        try:
            path.mkdir()  # atomic: two concurrent runs can never get the same directory
            return path
        except FileExistsError:
            continue
    raise RunDirError(f"{base}: could not create a unique run directory", hint="clean up old runs")


def latest_run_dir(cfg: Config) -> Path | None:
    """The newest run directory of this config's name (for --resume)."""
    return _newest_run(Path(cfg.output_dir), cfg.name)


LATEST = "latest:"


def resolve_run_ref(ref: str | Path) -> Path:
    """`latest:NAME` -> the newest run of config name NAME under runs/ (`latest:DIR/NAME`: under
    DIR); anything else is a path, returned as is. Saves `ls -d runs/*_NAME | tail -1`."""
    text = str(ref)
    if not text.startswith(LATEST):
        return Path(ref)
    spec = Path(text[len(LATEST) :])
    name, base = spec.name, spec.parent if str(spec.parent) not in ("", ".") else Path("runs")
    if not name:
        raise RunDirError(f"{text}: no run name after 'latest:'", hint="e.g. latest:intents-minilm")
    found = _newest_run(base, name)
    if found is None:
        raise RunDirError(
            f"{text}: no run named {name!r} under {base}/",
            hint=f"train it first, or name the directory; `latest:DIR/{name}` looks under DIR",
        )
    return found


def _newest_run(base: Path, name: str) -> Path | None:
    if not base.is_dir():
        return None
    cands = [p for p in base.iterdir() if _is_run_of(p.name, name) and (p / RUN_INFO).is_file()]
    return max(cands, key=lambda p: p.name) if cands else None


def _is_run_of(dirname: str, name: str) -> bool:
    """`<stamp>_<name>` or `<stamp>_<name>-<i>` (new_run_dir's names); a name may contain '-'."""
    rest = dirname.partition("_")[2]
    return rest == name or (rest.startswith(f"{name}-") and rest[len(name) + 1 :].isdigit())


def write_run_files(path: Path, cfg: Config, extra_info: dict[str, Any] | None = None) -> None:
    from tunelab.safety.secrets import redacted_config_yaml

    # Credentials typed into the config (e.g. tracking.uri with user:password@) never reach disk.
    atomic_write_text(path / CONFIG, redacted_config_yaml(cfg))
    info = {
        "tunelab_version": __version__,
        "run_format": RUN_FORMAT,
        "name": cfg.name,
        "task": cfg.task.type,
        "created_utc": utc_stamp(),
        **(extra_info or {}),
    }
    existing = path / RUN_INFO
    if existing.exists():
        old = json.loads(existing.read_text(encoding="utf-8"))
        info = {**old, **(extra_info or {}), "created_utc": old.get("created_utc", info["created_utc"])}
    atomic_write_json(existing, info)


def load_run(run_dir: str | Path) -> Run:
    """Open a run directory written by `tunelab train` (or `latest:NAME`); clear errors for anything else."""
    path = resolve_run_ref(run_dir)
    if not path.is_dir():
        raise RunDirError(f"{path}: run directory not found", hint="pass a directory printed by `tunelab train`")
    info_path = path / RUN_INFO
    if not info_path.is_file():
        raise RunDirError(
            f"{path}: not a tunelab run directory (no {RUN_INFO})", hint="pass a directory printed by `tunelab train`"
        )
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RunDirError(
            f"{info_path}: corrupt run file", hint="the run was interrupted while starting; train again"
        ) from None
    if not isinstance(info, dict):
        raise RunDirError(f"{info_path}: corrupt run file", hint="the run was interrupted while starting; train again")
    fmt = info.get("run_format")
    if fmt != RUN_FORMAT:
        raise RunDirError(
            f"{path}: run written by tunelab {info.get('tunelab_version', '?')} (format {fmt}), this is {__version__} (format {RUN_FORMAT})",
            hint=f"use tunelab {info.get('tunelab_version', 'of that version')} or retrain",
        )
    cfg_path = path / CONFIG
    if not cfg_path.is_file():
        raise RunDirError(f"{path}: {CONFIG} missing", hint="the run directory is incomplete")
    try:
        cfg = validate_config(parse_yaml(cfg_path.read_text(encoding="utf-8"), str(cfg_path)), str(cfg_path))
    except ConfigError as exc:
        raise RunDirError(exc.message, hint="the saved config no longer validates; retrain") from None
    return Run(path=path, config=cfg, info=info)


def final_model_dir(run_dir: Path) -> Path:
    model = run_dir / MODEL
    recover_dir(model)  # a crash mid-swap left the previous complete model/ aside: put it back
    if not (model.is_dir() and any(model.iterdir())):
        raise RunDirError(
            f"{run_dir}: no trained model in {MODEL}/", hint="the run did not finish; `tunelab train CONFIG --resume`"
        )
    return model


def confine(run_dir: Path, relative: str | Path) -> Path:
    """Resolve a path inside the run directory; refuse one that escapes it (../, absolute, symlinks)."""
    root = run_dir.resolve()
    target = (root / relative).resolve()
    if target != root and root not in target.parents:
        raise RunDirError(
            f"{relative}: path escapes the run directory {run_dir}", hint="use a path inside the run directory"
        )
    return target
