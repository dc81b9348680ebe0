"""`tunelab report RUN_A --compare RUN_B`: a two-run comparison page (HTML + Markdown).

Overlaid loss and throughput curves from both histories, then the same ranked tables as
`tunelab diff`, rendered by the report package's document renderers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunelab import ui
from tunelab.diff.compare import DiffResult, compare
from tunelab.diff.render import facts, fmt
from tunelab.diff.sides import Side
from tunelab.errors import RunDirError
from tunelab.io import atomic_write_text
from tunelab.reporting import charts
from tunelab.reporting.doc import Document, Section, Table, Text, image
from tunelab.reporting.html import render_html
from tunelab.reporting.markdown import render_markdown


def compare_report(run_a: Path, run_b: Path) -> Path:
    """Write RUN_A/compare_<RUN_B name>.html (+ .md); returns the HTML path."""
    from tunelab.runs import resolve_run_ref

    run_a, run_b = resolve_run_ref(run_a), resolve_run_ref(run_b)  # latest:NAME
    result = compare(run_a, run_b)
    if not result.a.is_run:
        raise RunDirError(
            f"{run_a}: the first argument must be a run directory", hint="tunelab report RUN --compare OTHER"
        )
    stem = f"compare_{Path(run_b).stem}"
    doc = compare_document(result)
    html_path = atomic_write_text(Path(run_a) / f"{stem}.html", render_html(doc))
    atomic_write_text(Path(run_a) / f"{stem}.md", render_markdown(doc, Path(run_a)))
    ui.console().print(f"comparison: {html_path}  (and {Path(run_a) / f'{stem}.md'})")
    return html_path


def compare_document(result: DiffResult) -> Document:
    a, b = result.a, result.b
    doc = Document(f"Comparison: {_name(a)} (A) vs {_name(b)} (B)", f"A: {a.path} · B: {b.path}")
    summary = Section("Summary")
    for line in result.headline():
        summary.add(Text(line))
    doc.add(summary)
    doc.add(_curves(a, b))
    doc.add(_speed(result))
    doc.add(_results(result))
    diffs = Section("Recorded differences")
    rows = [[d.key, fmt(d.a), fmt(d.b)] for d in result.shown()]
    diffs.add(Table(["key", "A", "B"], rows) if rows else Text("no differences that matter"))
    doc.add(diffs)
    return doc


def _name(side: Side) -> str:
    return str(side.config.get("name") or side.path.name)


def _series(side: Side, key: str) -> tuple[list[float], list[float]]:
    rows = [r for r in side.records("train") if isinstance(r.get(key), (int, float))]
    return [float(r["step"]) for r in rows], [float(r[key]) for r in rows]


def _curves(a: Side, b: Side) -> Section:
    sec = Section("Training curves")
    for key, title, ylabel in (
        ("loss", "Training loss", "loss"),
        ("samples_per_s", "Throughput", "samples/s"),
        ("learning_rate", "Learning rate", "lr"),
    ):
        png = charts.overlay({f"A {_name(a)}": _series(a, key), f"B {_name(b)}": _series(b, key)}, title, ylabel)
        sec.add(image(f"compare_{key}", title, png))
    return sec


def _speed(result: DiffResult) -> Section:
    sp = result.speed
    sec = Section("Speed: differences ranked by effect")
    rows: list[list[Any]] = [
        [i, f.title, facts(f.a), facts(f.b), f"~{f.factor:.2f}x", f.basis, f.why] for i, f in enumerate(sp.factors, 1)
    ]
    rows.append(["", "samples/s (optimizer steps)", fmt(sp.a), fmt(sp.b), f"{sp.ratio or 1:.2f}x", sp.basis, ""])
    if sp.unexplained is not None:
        rows.append(["", "unexplained rest", "", "", f"{sp.unexplained:.2f}x", "", ""])
    sec.add(Table(["#", "difference", "A", "B", "factor", "basis", "why"], rows))
    if sp.note:
        sec.add(Text(sp.note))
    return sec


def _results(result: DiffResult) -> Section:
    sec = Section("Results: differences that move metrics, ranked")
    m = result.metric
    if m:
        tone = "good" if m["delta"] > 0 else ("bad" if m["delta"] < 0 else None)
        sec.add(Text(f"{m['metric']}: A {m['a']:.4f} vs B {m['b']:.4f} ({m['delta']:+.4f})", tone=tone))
        per_class = [[c["class"], c["a"], c["b"], f"{c['delta']:+.3f}"] for c in m["per_class_f1"]]
        if per_class:
            sec.add(Table(["class", "F1 A", "F1 B", "delta"], per_class, caption="per-class F1, largest changes first"))
    rows = [[i, e.title, e.why, e.weight] for i, e in enumerate(result.explanations, 1)]
    sec.add(
        Table(["#", "difference", "why", "weight"], rows)
        if rows
        else Text("no difference known to change what is learned")
    )
    return sec
