"""`experiment.json`: the experiment's ledger, rewritten atomically after every run state change.

It is the only thing resume trusts: a run is done when its record says `ok`; `running` left by a
killed parent counts as not done.

Several `tunelab experiment --only NAME` processes (one per GPU, node or array task) may share one
experiment directory, so every change is a read-modify-write of the file under a file lock:
each process merges its own records into what is on disk instead of overwriting the others'.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from filelock import FileLock

from tunelab.errors import RunDirError
from tunelab.io import atomic_write_json

EXPERIMENT_FILE = "experiment.json"
EXPERIMENT_FORMAT = 1


def now_utc() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Ledger:
    """Thread- and process-safe view of experiment.json (runs finish on worker threads, and
    other processes may work on the same experiment)."""

    def __init__(self, exp_dir: Path, data: dict[str, Any]):
        self.exp_dir = exp_dir
        self.data = data
        self._lock = threading.Lock()
        self._file_lock = FileLock(str(exp_dir / f".{EXPERIMENT_FILE}.lock"))

    @classmethod
    def open(cls, exp_dir: Path, header: dict[str, Any]) -> Ledger:
        exp_dir.mkdir(parents=True, exist_ok=True)
        ledger = cls(exp_dir, {"format": EXPERIMENT_FORMAT, "created_utc": now_utc(), "runs": {}})
        with ledger._lock, ledger._file_lock:
            ledger._reload()
            ledger.data.update(header)
            ledger.save()
        return ledger

    def _reload(self) -> None:
        """Take what other processes wrote; this process's records win only for keys it changes."""
        if (self.exp_dir / EXPERIMENT_FILE).is_file():
            self.data = load_experiment(self.exp_dir)

    @property
    def runs(self) -> dict[str, dict[str, Any]]:
        return self.data["runs"]

    def update(self, name: str, **fields: Any) -> dict[str, Any]:
        with self._lock, self._file_lock:
            self._reload()
            record = self.runs.setdefault(name, {"name": name, "attempts": 0})
            record.update(fields)
            self.save()
            return dict(record)

    def set(self, key: str, value: Any) -> None:
        with self._lock, self._file_lock:
            self._reload()
            self.data[key] = value
            self.save()

    def save(self) -> None:
        self.data["updated_utc"] = now_utc()
        atomic_write_json(self.exp_dir / EXPERIMENT_FILE, self.data)


def load_experiment(exp_dir: Path) -> dict[str, Any]:
    path = Path(exp_dir) / EXPERIMENT_FILE
    if not path.is_file():
        raise RunDirError(
            f"{exp_dir}: not an experiment directory (no {EXPERIMENT_FILE})",
            hint="pass the directory printed by `tunelab experiment`",
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RunDirError(
            f"{path}: corrupt experiment file", hint="re-run `tunelab experiment SPEC` to rebuild it"
        ) from None
    if not isinstance(data, dict) or data.get("format") != EXPERIMENT_FORMAT or not isinstance(data.get("runs"), dict):
        raise RunDirError(
            f"{path}: unknown experiment format {data.get('format') if isinstance(data, dict) else '?'}",
            hint=f"this tunelab reads format {EXPERIMENT_FORMAT}",
        )
    return data
