"""TTA vs no TTA for every successful run of an experiment, each measured in its own process."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from tunelab.experiments.process import run_child
from tunelab.reporting.collect import read_json


def compare_all(exp_dir: Path, experiment: dict[str, Any], timeout_s: float | None) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, rec in sorted(experiment["runs"].items()):
        if rec.get("status") != "ok":
            continue
        run_dir = exp_dir / rec["run_dir"]
        done = read_json(run_dir / "tta.json")
        if isinstance(done, dict) and "verdict" in done:  # resumable: a retrained run has a fresh dir
            results[name] = done
            continue
        argv = [sys.executable, "-m", "tunelab.inference.tta", str(run_dir)]
        outcome = run_child(
            argv,
            exp_dir / "logs" / f"{name}.tta.log",
            exp_dir / "logs" / f".{name}.tta.error.json",
            rec.get("gpu"),
            timeout_s,
        )
        data = read_json(run_dir / "tta.json")
        if outcome.status == "ok" and isinstance(data, dict):
            results[name] = data
        else:
            err = outcome.error or {}
            results[name] = {"error": f"{err.get('class')}: {err.get('message')}"}
    return results
