"""What `tunelab evaluate` (`tunelab.Run.evaluate`) writes for a labelled file scored by a trained run.

Results go to `RUN_DIR/evaluations/<file stem>/` (metrics.json, confusion matrix JSON + PNG,
predictions.jsonl) and a table on the terminal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunelab.io import atomic_write_json

EVALUATIONS = "evaluations"


def write_evaluation(
    run_dir: Path, cfg: Any, task: Any, prediction: Any, frame: Any, report: dict[str, Any], source: str, name: str
) -> Path:
    """metrics.json, confusion matrix and predictions.jsonl under evaluations/<name>/; prints the table."""
    from tunelab.data.roles import target_columns
    from tunelab.inference.predict import run_predictions_frame, write_frame
    from tunelab.runs import confine
    from tunelab.training.finish import save_report_files

    # An input named `...csv` has the stem `..`: confined, it can never overwrite the run's own files.
    out_dir = confine(run_dir, f"{EVALUATIONS}/{_safe_stem(name)}")
    atomic_write_json(out_dir / "metrics.json", {"input": source, **report})
    save_report_files(report, out_dir, "validation")
    gold = frame[target_columns(cfg.task)[0]].tolist()
    write_frame(run_predictions_frame(prediction, cfg, gold), out_dir / "predictions.jsonl")
    print_report(report, out_dir, task.primary_metric)
    return out_dir


def print_report(report: dict[str, Any], out_dir: Path, primary: str | None) -> None:
    from tunelab import ui

    rows, styles = [], []
    for k, v in report.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            rows.append([k, f"{v:.4f}" if isinstance(v, float) else str(v)])
            styles.append("bold" if k == primary else None)
    # A table on a terminal, one `metric: value` line per row in a log file.
    ui.print_rows("evaluation", ["metric", "value"], rows, styles=styles)
    ui.console().print(f"evaluation written to {out_dir}")


def _safe_stem(name: str) -> str:
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).lstrip(".")
    return stem or "input"
