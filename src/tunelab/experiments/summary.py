"""The experiment's comparison table: rich on screen, summary.md and summary.json on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from tunelab.io import atomic_write_json, atomic_write_text
from tunelab.run_summary import collect_run

COLUMNS = (
    "run",
    "model",
    "status",
    "parameters",
    "trainable",
    "primary",
    "metrics",
    "train_time_s",
    "samples_per_s",
    "peak_memory_mb",
    "error",
)


def summary_rows(exp_dir: Path, experiment: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name, rec in sorted(experiment["runs"].items()):
        row: dict[str, Any] = {
            "run": name,
            "variant": rec.get("variant"),
            "fold": rec.get("fold"),
            "model": rec.get("model"),
            "status": rec.get("status"),
            "duration_s": rec.get("duration_s"),
            "error": None,
        }
        run_dir = exp_dir / rec.get("run_dir", f"runs/{name}")
        if run_dir.is_dir():
            summary = collect_run(run_dir)
            head = summary.headline()
            row.update(
                parameters=head["parameters"],
                trainable=head["trainable_parameters"],
                train_time_s=head["train_time_s"] or rec.get("duration_s"),
                samples_per_s=head["samples_per_s"],
                peak_memory_mb=head["peak_memory_mb"],
                primary_metric=summary.primary_metric,
                primary=summary.primary_value,
                metrics=summary.scores(),
            )
        if rec.get("status") == "failed":
            err = rec.get("error") or {}
            row["error"] = f"{err.get('class')}: {err.get('message')}"
            finding = rec.get("doctor_finding")
            if finding:
                row["doctor"] = f"{finding.get('id')}: {finding.get('fix') or finding.get('title') or ''}"
        rows.append(row)
    return rows


def fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v / 1e6:.2f}M" if v >= 100_000 else str(v)
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def _metric_text(metrics: dict[str, Any] | None) -> str:
    if not metrics:
        return "-"
    keep = [k for k in ("accuracy", "macro_f1", "rouge1", "rouge2", "rougeL", "rouge_sum", "loss") if k in metrics]
    return ", ".join(f"{k}={metrics[k]:.4f}" for k in keep[:4]) or "-"


def short_model(model: Any) -> str:
    """A local model directory shown by its last two path parts (the screen table has 11 columns;
    summary.md and summary.json keep the full path). Hub ids ("org/name") are shown whole."""
    text = fmt(model)
    parts = Path(text).parts
    if len(parts) > 2 and (Path(text).is_absolute() or text.startswith(".")):
        return ".../" + "/".join(parts[-2:])
    return text


def _cells(row: dict[str, Any], screen: bool = False) -> list[str]:
    model = short_model(row.get("model")) if screen else fmt(row.get("model"))
    return [
        row["run"],
        model,
        row.get("status") or "-",
        fmt(row.get("parameters")),
        fmt(row.get("trainable")),
        fmt(row.get("primary")),
        _metric_text(row.get("metrics")),
        fmt(row.get("train_time_s")),
        fmt(row.get("samples_per_s")),
        fmt(row.get("peak_memory_mb")),
        row.get("error") or "",
    ]


def markdown_table(rows: list[dict[str, Any]]) -> str:
    head = "| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n"
    body = "".join(
        "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in _cells(r)) + " |\n" for r in rows
    )
    return head + body


def write_summary(exp_dir: Path, experiment: dict[str, Any], console: Any = None) -> list[dict[str, Any]]:
    rows = summary_rows(exp_dir, experiment)
    ok = sum(r["status"] == "ok" for r in rows)
    failed = [r for r in rows if r["status"] == "failed"]
    lines = [
        f"# Experiment {experiment.get('name')}\n",
        f"{ok} ok, {len(failed)} failed of {len(rows)} runs.\n",
        markdown_table(rows),
    ]
    for r in failed:
        lines.append(
            f"\n- **{r['run']}** failed: {r['error']}" + (f" — doctor: {r['doctor']}" if r.get("doctor") else "")
        )
    atomic_write_text(exp_dir / "summary.md", "\n".join(lines) + "\n")
    atomic_write_json(exp_dir / "summary.json", {"runs": rows, "ok": ok, "failed": len(failed)})
    if console is not None:
        table = Table(title=f"experiment {experiment.get('name')}: {ok} ok, {len(failed)} failed")
        for col in COLUMNS:
            # The error is in full in summary.md and below the table; on screen it is cut short.
            short = col == "error"
            table.add_column(
                col, overflow="ellipsis" if short else "fold", no_wrap=short, max_width=40 if short else None
            )
        for r in rows:
            style = "red" if r["status"] == "failed" else None
            table.add_row(*_cells(r, screen=True), style=style)
        console.print(table)
        for r in failed:
            console.print(
                f"[red]{r['run']} failed[/]: {r['error']}" + (f" (doctor: {r['doctor']})" if r.get("doctor") else "")
            )
        console.print(f"summary: {exp_dir / 'summary.md'}")
    return rows
