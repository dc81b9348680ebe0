"""`tunelab report DIR`: report.html (self-contained) + report.md for a run, an experiment or a baseline."""

from __future__ import annotations

from pathlib import Path

from tunelab import ui
from tunelab.errors import RunDirError
from tunelab.io import atomic_write_text
from tunelab.reporting import experiment_sections as es
from tunelab.reporting import run_sections as rs
from tunelab.reporting.doc import Document, Section, Table, Text
from tunelab.reporting.html import render_html
from tunelab.reporting.markdown import render_markdown
from tunelab.run_summary import collect_run, is_experiment_dir, is_run_dir, read_json


def report_command(directory: Path) -> Path:
    from tunelab.runs import resolve_run_ref

    directory = resolve_run_ref(directory)  # `latest:NAME` names the newest run of a config
    if is_experiment_dir(directory):
        doc = experiment_document(directory)
    elif is_run_dir(directory):
        _check_run_info(directory)
        doc = run_document(directory)
    elif (directory / "baseline.json").is_file():
        doc = baseline_document(directory)
    else:
        raise RunDirError(
            f"{directory}: neither a run (run.json), an experiment (experiment.json) nor a baseline (baseline.json)",
            hint="pass a directory written by `tunelab train`, `tunelab experiment` or `tunelab baseline`",
        )
    return write_report(directory, doc)


def _check_run_info(run_dir: Path) -> None:
    """A report may describe an unfinished run, but not one whose run.json we cannot read."""
    from tunelab.runs import RUN_FORMAT, RUN_INFO
    from tunelab.version import __version__

    info = read_json(run_dir / RUN_INFO)
    if not isinstance(info, dict):
        raise RunDirError(
            f"{run_dir / RUN_INFO}: corrupt run file", hint="the run was interrupted while starting; train again"
        )
    if info.get("run_format") != RUN_FORMAT:
        raise RunDirError(
            f"{run_dir}: run written by tunelab {info.get('tunelab_version', '?')} (format "
            f"{info.get('run_format')}), this is {__version__} (format {RUN_FORMAT})",
            hint=f"use tunelab {info.get('tunelab_version', 'of that version')} to report it",
        )


def write_report(directory: Path, doc: Document) -> Path:
    html_path = atomic_write_text(directory / "report.html", render_html(doc))
    atomic_write_text(directory / "report.md", render_markdown(doc, directory))
    ui.console().print(f"report: {html_path}  (and {directory / 'report.md'})")
    return html_path


def run_document(run_dir: Path) -> Document:
    from tunelab.safety.secrets import redact

    run = collect_run(run_dir)
    doc = Document(f"Run {run.name}", redact(f"{run.task} · {run.model} · {run_dir}"))
    for build in (
        rs.config_section,
        rs.data_section,
        rs.training_section,
        rs.metrics_section,
        rs.examples_section,
        rs.tta_section,
        rs.findings_section,
    ):
        doc.add(build(run))
    return doc


def experiment_document(exp_dir: Path) -> Document:
    from tunelab.experiments.state import load_experiment

    experiment = load_experiment(exp_dir)
    rows = es.experiment_rows(exp_dir, experiment)
    doc = Document(f"Experiment {experiment.get('name')}", f"{experiment.get('task')} · {exp_dir}")
    doc.add(es.overview_section(exp_dir, experiment, rows))
    doc.add(es.comparison_section(exp_dir, rows))
    doc.add(es.failures_section(experiment))
    doc.add(es.kfold_section(experiment))
    doc.add(es.ensemble_section(exp_dir))
    doc.add(es.tta_section(experiment))
    for path in sorted(exp_dir.glob("baseline*/baseline.json")):
        doc.add(_baseline_section(path.parent, f"LLM-API baseline ({path.parent.name})"))
    best = _best_ok_run(exp_dir, rows)
    if best is not None:
        run = collect_run(best)
        for build in (rs.data_section, rs.metrics_section, rs.examples_section, rs.findings_section):
            section = build(run)
            section.title = f"{section.title} (best run: {run.name})"
            doc.add(section)
    return doc


def _best_ok_run(exp_dir: Path, rows: list[dict]) -> Path | None:
    ok = [r for r in rows if r["status"] == "ok" and isinstance(r.get("primary"), (int, float))]
    if not ok:
        return None
    return exp_dir / "runs" / max(ok, key=lambda r: r["primary"])["run"]


def baseline_document(directory: Path) -> Document:
    doc = Document(f"Baseline {directory.name}", str(directory))
    doc.add(_baseline_section(directory, "LLM-API baseline"))
    return doc


def _baseline_section(directory: Path, title: str) -> Section:
    data = read_json(directory / "baseline.json") or {}
    sec = Section(title)
    sec.add(
        Text(
            f"{data.get('model')} at {data.get('base_url')}: {data.get('scored_rows', 0)} rows scored, "
            f"{data.get('failed_rows', 0)} failed (recorded, not scored)."
        )
    )
    scores = data.get("scores") or {}
    if scores:
        sec.add(Table(["metric", "value"], [[k, v] for k, v in scores.items() if isinstance(v, (int, float))]))
    usage = data.get("usage") or {}
    if usage:
        sec.add(Table(["usage", "value"], [[k, v] for k, v in usage.items()]))
    return sec
