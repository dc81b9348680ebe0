"""`experiment.json`: the experiment's ledger, rewritten atomically after every run state change.

It is the only thing resume trusts: a run is done when its record says `ok`; `running` left by a
killed parent counts as not done.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tunelab.errors import RunDirError
from tunelab.io import atomic_write_json

EXPERIMENT_FILE = "experiment.json"
EXPERIMENT_FORMAT = 1


def now_utc() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Ledger:
    """Thread-safe view of experiment.json (runs finish on worker threads)."""

    def __init__(self, exp_dir: Path, data: dict[str, Any]):
        self.exp_dir = exp_dir
        self.data = data
        self._lock = threading.Lock()

    @classmethod
    def open(cls, exp_dir: Path, header: dict[str, Any]) -> Ledger:
        path = exp_dir / EXPERIMENT_FILE
        data = load_experiment(exp_dir) if path.is_file() else {"format": EXPERIMENT_FORMAT, "created_utc": now_utc(), "runs": {}}
        data.update(header)
        ledger = cls(exp_dir, data)
        ledger.save()
        return ledger

    @property
    def runs(self) -> dict[str, dict[str, Any]]:
        return self.data["runs"]

    def update(self, name: str, **fields: Any) -> dict[str, Any]:
        with self._lock:
            record = self.runs.setdefault(name, {"name": name, "attempts": 0})
            record.update(fields)
            self.save()
            return dict(record)

    def set(self, key: str, value: Any) -> None:
        with self._lock:
            self.data[key] = value
            self.save()

    def save(self) -> None:
        self.data["updated_utc"] = now_utc()
        atomic_write_json(self.exp_dir / EXPERIMENT_FILE, self.data)


def load_experiment(exp_dir: Path) -> dict[str, Any]:
    path = Path(exp_dir) / EXPERIMENT_FILE
    if not path.is_file():
        raise RunDirError(f"{exp_dir}: not an experiment directory (no {EXPERIMENT_FILE})",
                          hint="pass the directory printed by `tunelab experiment`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RunDirError(f"{path}: corrupt experiment file", hint="re-run `tunelab experiment SPEC` to rebuild it") from None
    if not isinstance(data, dict) or data.get("format") != EXPERIMENT_FORMAT or not isinstance(data.get("runs"), dict):
        raise RunDirError(f"{path}: unknown experiment format {data.get('format') if isinstance(data, dict) else '?'}",
                          hint=f"this tunelab reads format {EXPERIMENT_FORMAT}")
    return data
