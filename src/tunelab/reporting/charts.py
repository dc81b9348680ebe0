"""Report plots: matplotlib (Agg) figures returned as PNG bytes.

Every function returns None when there is nothing to draw, so the report simply leaves the chart
out instead of showing an empty frame.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # headless; must precede pyplot
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    plt = _plt()
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _series(rows: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for i, r in enumerate(rows):
        v = r.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            xs.append(r.get("step", i))
            ys.append(v)
    return xs, ys


def curves(history: list[dict[str, Any]], keys: Sequence[str], title: str, ylabel: str = "") -> bytes | None:
    """One line per key of history.jsonl against the step (loss, eval metrics, lr, throughput)."""
    drawn = [(k, *_series(history, k)) for k in keys]
    drawn = [d for d in drawn if d[1]]
    if not drawn:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.4))
    for key, xs, ys in drawn:
        ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, label=key)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def two_axis_curves(
    history: list[dict[str, Any]],
    left: Sequence[str],
    right: Sequence[str],
    title: str,
    labels: tuple[str, str] = ("", ""),
) -> bytes | None:
    """Two families of curves on their own y axes (e.g. samples/s left, tokens/s right)."""
    fig = two_axis_figure(history, left, right, title, labels)
    return None if fig is None else _png(fig)


def two_axis_figure(
    history: list[dict[str, Any]],
    left: Sequence[str],
    right: Sequence[str],
    title: str,
    labels: tuple[str, str] = ("", ""),
) -> Any:
    """The figure of `two_axis_curves`. Why two axes: tokens/s is ~100x samples/s, so on one
    axis the samples/s line is flat at the bottom and says nothing."""
    sides = [[(k, *_series(history, k)) for k in keys] for keys in (left, right)]
    sides = [[d for d in side if d[1]] for side in sides]
    if not sides[0] and not sides[1]:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.4))
    axes = [ax, ax.twinx()] if sides[0] and sides[1] else [ax]
    colors = iter(["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e"])
    handles = []
    for axis, side, label in zip(axes, [s for s in sides if s], [lab for s, lab in zip(sides, labels) if s]):
        for key, xs, ys in side:
            marker = "o" if len(xs) < 30 else None
            handles += axis.plot(xs, ys, marker=marker, markersize=3, label=key, color=next(colors))
        axis.set_ylabel(label)
    ax.set_xlabel("step")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(handles=handles, fontsize=8)
    return fig


def bars(
    labels: Sequence[str],
    values: Sequence[float],
    title: str,
    xlabel: str = "",
    highlight: int | None = None,
    fmt: str = "{:.4g}",
) -> bytes | None:
    """Horizontal bars with values written at the end (comparisons, label distribution)."""
    pairs = [(str(lab), float(v)) for lab, v in zip(labels, values) if isinstance(v, (int, float))]
    if not pairs:
        return None
    plt = _plt()
    height = min(0.35 * len(pairs) + 1.2, 14)
    fig, ax = plt.subplots(figsize=(7, height))
    colors = ["#d62728" if i == highlight else "#1f77b4" for i in range(len(pairs))]
    ax.barh([p[0][:40] for p in pairs], [p[1] for p in pairs], color=colors)
    for i, (_, v) in enumerate(pairs):
        ax.text(v, i, " " + fmt.format(v), va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.margins(x=0.15)
    return _png(fig)


def histogram(values: Sequence[float], title: str, xlabel: str, limit: float | None = None) -> bytes | None:
    if not values:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.hist(list(values), bins=min(40, max(5, len(values) // 5)), color="#1f77b4")
    if limit:
        ax.axvline(limit, color="#d62728", linestyle="--", label=f"max_length {limit:g}")
        ax.legend(fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("rows")
    ax.set_title(title)
    return _png(fig)


def confusion(cm: Sequence[Sequence[int]], names: Sequence[str]) -> bytes | None:
    """The evaluation module's heatmap (one look for every confusion matrix tunelab draws)."""
    import tempfile
    from pathlib import Path

    import numpy as np

    from tunelab.evaluation.classification import plot_confusion_matrix

    arr = np.asarray(cm, dtype=np.int64)
    if arr.size == 0 or arr.ndim != 2:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cm.png"
        plot_confusion_matrix(arr, list(names), path)
        return path.read_bytes()


def overlay(
    series: dict[str, tuple[Sequence[float], Sequence[float]]], title: str, ylabel: str = "", xlabel: str = "step"
) -> bytes | None:
    """Several runs' (x, y) series on one axis (run comparisons: loss, throughput)."""
    drawn = {label: xy for label, xy in series.items() if len(xy[0]) and len(xy[0]) == len(xy[1])}
    if not drawn:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.4))
    for label, (xs, ys) in drawn.items():
        ax.plot(list(xs), list(ys), marker="o" if len(xs) < 30 else None, markersize=3, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)
