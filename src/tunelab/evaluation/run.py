"""`tunelab evaluate RUN_DIR --input FILE`: score a labelled file with a trained run.

Results go to `RUN_DIR/evaluations/<file stem>/` (metrics.json, confusion matrix JSON + PNG,
predictions.jsonl) and a table on the terminal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunelab.io import atomic_write_json

EVALUATIONS = "evaluations"


def evaluate_run(run_dir: Path, input: Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """Predict + score `input`; returns the report (also written under evaluations/)."""
    from tunelab.data.roles import target_columns
    from tunelab.inference.predict import load_trained, prediction_frame, read_input, write_frame
    from tunelab.training.finish import save_report_files

    cfg, task, model, tokenizer, plan = load_trained(Path(run_dir), overrides or [])
    frame = read_input(cfg, Path(input), split="validation")  # labels required
    prediction = task.predict(model, tokenizer, frame, cfg, plan)
    report = task.score(prediction, frame)
    from tunelab.runs import confine

    # An input named `...csv` has the stem `..`: confined, it can never overwrite the run's own files (H7).
    out_dir = confine(Path(run_dir), f"{EVALUATIONS}/{_safe_stem(Path(input))}")
    atomic_write_json(out_dir / "metrics.json", {"input": str(input), **report})
    save_report_files(report, out_dir, "validation")
    gold = frame[target_columns(cfg.task)[0]].tolist()
    write_frame(
        prediction_frame(prediction, cfg.inference.id_column, with_probs=True, gold=gold), out_dir / "predictions.jsonl"
    )
    print_report(report, out_dir, getattr(task, "primary_metric", None))
    return report


def print_report(report: dict[str, Any], out_dir: Path, primary: str | None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    table = Table(title="evaluation")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in report.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            name = f"[bold]{k}[/]" if k == primary else k
            table.add_row(name, f"{v:.4f}" if isinstance(v, float) else str(v))
    console.print(table)
    console.print(f"evaluation written to {out_dir}")


def _safe_stem(path: Path) -> str:
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in path.stem).lstrip(".")
    return stem or "input"
