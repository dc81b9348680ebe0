"""TTA vs no TTA for every successful run of an experiment, each measured in its own process."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from tunelab.experiments.process import run_child
from tunelab.run_summary import read_json


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
        argv = [sys.executable, "-m", "tunelab.experiments.tta_compare", str(run_dir)]
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


def compare_tta(run_dir: Any) -> dict[str, Any]:
    """Score TTA against no TTA on the run's validation split; writes RUN_DIR/tta.json."""
    from tunelab.data.splits import load_splits
    from tunelab.errors import DataError
    from tunelab.inference.tta import tta_predict, verdict
    from tunelab.io import atomic_write_json
    from tunelab.pipeline.predict import load_trained

    run_dir = Path(run_dir)
    cfg, task, model, tokenizer, plan = load_trained(run_dir, [])
    frame = load_splits(cfg).validation
    if frame is None or not len(frame):
        raise DataError(
            f"{run_dir}: no validation rows to measure TTA on", hint="set data.validation_file or data.validation_split"
        )
    merged, parts = tta_predict(task, model, tokenizer, frame, cfg, plan)
    primary = task.primary_metric
    per_view = {name: float(task.score(p, frame)[primary]) for name, p in parts.items()}
    # Without TTA: the classifier's "original" view, or the first decode (the configured one).
    without = per_view.get("original", next(iter(per_view.values())))
    with_tta = float(task.score(merged, frame)[primary])
    result = {
        "task": task.name,
        "primary_metric": primary,
        "rows": len(frame),
        "per_view": per_view,
        "without": without,
        "with": with_tta,
        "gain": with_tta - without,
        "verdict": verdict(primary, without, with_tta),
    }
    atomic_write_json(run_dir / "tta.json", result)
    return result


def main(argv: list[str] | None = None) -> int:
    """`python -m tunelab.experiments.tta_compare RUN_DIR`: one run's TTA measured in a child process."""
    from tunelab.errors import TunelabError

    args = sys.argv[1:] if argv is None else argv
    try:
        result = compare_tta(args[0])
    except TunelabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(result["verdict"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
