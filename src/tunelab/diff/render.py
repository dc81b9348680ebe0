"""Print a DiffResult: rich tables on a terminal, plain lines otherwise, JSON with --json."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.markup import escape

from tunelab import ui
from tunelab.diff.compare import DiffResult

MAX_VALUE = 60


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        text = ", ".join(f"{k}={fmt(v)}" for k, v in value.items())
    elif isinstance(value, list):
        text = json.dumps(value, ensure_ascii=False)
    else:
        text = str(value)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


def facts(value: Any) -> str:
    """A speed factor's per-side facts in a few words."""
    if isinstance(value, dict) and "padding_efficiency" in value:
        return (
            f"{value['batching']}, padding efficiency {value['padding_efficiency']:.2f} "
            f"({value.get('padding_basis')}), {value['tokens']:.0f} tokens/sample"
        )
    if isinstance(value, dict) and "data_wait_share" in value:
        return f"data wait {100 * value['data_wait_share']:.0f}%, workers {value['workers']}"
    return fmt(value)


def print_json(result: DiffResult, show_all: bool = False) -> None:
    sys.stdout.write(json.dumps(result.to_json(show_all), ensure_ascii=False, indent=2, default=str) + "\n")


def print_diff(result: DiffResult, show_all: bool = False) -> None:
    con = ui.console()
    plain = not con.is_terminal
    con.print(f"A: {escape(str(result.a.path))} ({result.a.kind})")
    con.print(f"B: {escape(str(result.b.path))} ({result.b.kind})")
    for note in result.a.notes + result.b.notes:
        con.print(f"note: {escape(note)}")
    for line in result.headline():
        con.print(f"* {escape(line)}")
    _speed(con, result, plain)
    _results(con, result, plain)
    _differences(con, result, show_all, plain)


def _table(con: Any, title: str, columns: list[str], rows: list[list[str]], plain: bool) -> None:
    if rows:  # the one table style: rich on a terminal, `header: value; ...` lines in a log file
        ui.print_rows(title, columns, rows, console=con)


def _speed(con: Any, result: DiffResult, plain: bool) -> None:
    sp = result.speed
    rows = [
        [str(i), f.title, facts(f.a), facts(f.b), f"~{f.factor:.2f}x", f.basis, f.why]
        for i, f in enumerate(sp.factors, 1)
    ]
    if sp.a or sp.b:
        rows.append(
            [
                "",
                "samples/s (optimizer steps)",
                fmt(sp.a),
                fmt(sp.b),
                f"{sp.ratio:.2f}x" if sp.ratio else "-",
                sp.basis,
                "",
            ]
        )
    if sp.factors:
        rows.append(["", "explained by the differences", "", "", f"{sp.explained:.2f}x", "", ""])
    if sp.unexplained is not None:
        rows.append(["", "unexplained rest", "", "", f"{sp.unexplained:.2f}x", "", sp.note])
    elif sp.note:
        rows.append(["", "note", "", "", "", "", sp.note])
    title = (
        f"Speed: {sp.slower} is slower by {sp.ratio:.2f}x ({sp.basis})"
        if sp.slower and sp.ratio
        else f"Speed: no difference ({sp.basis})"
    )
    _table(con, title, ["#", "difference", "A", "B", "factor", "basis", "why"], rows, plain)


def _results(con: Any, result: DiffResult, plain: bool) -> None:
    m = result.metric
    if m:
        per_class = [[c["class"], fmt(c["a"]), fmt(c["b"]), f"{c['delta']:+.3f}"] for c in m["per_class_f1"][:8]]
        con.print(f"Result: {m['metric']} A {m['a']:.4f} vs B {m['b']:.4f} ({m['delta']:+.4f})")
        _table(con, "Per-class F1 (largest changes first)", ["class", "A", "B", "delta"], per_class, plain)
    rows = [
        [str(i), e.title, e.why, "high" if e.weight >= 3 else ("medium" if e.weight >= 2 else "low")]
        for i, e in enumerate(result.explanations, 1)
    ]
    _table(con, "Results: differences that move metrics, ranked", ["#", "difference", "why", "weight"], rows, plain)
    if not rows and not m:
        con.print("Results: no difference known to change what is learned")


def _differences(con: Any, result: DiffResult, show_all: bool, plain: bool) -> None:
    shown = result.shown(show_all)
    rows = [[d.key, fmt(d.a), fmt(d.b), d.reason if d.noise else ""] for d in shown]
    _table(con, "All recorded differences", ["key", "A", "B", "noise"], rows, plain)
    hidden = len(result.differences) - len(shown)
    if hidden:
        con.print(f"{hidden} difference(s) that do not matter hidden (paths, names, timestamps); --all shows them")
    if not result.differences:
        con.print("no differences recorded")
