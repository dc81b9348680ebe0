"""Classification metrics: accuracy, macro/micro/weighted F1, per-class report, confusion matrix.

scikit-learn computes the numbers; this module fixes the label order (the run's label map, so
classes absent from a split still get a row), names the classes, and draws the confusion matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tunelab.io import atomic_path, atomic_write_json

# Above this many classes a full heatmap is unreadable: show the most-confused subset instead.
MAX_PLOT_CLASSES = 50
SUBSET_CLASSES = 30


def summary_metrics(y_true: Sequence[int], y_pred: Sequence[int], num_labels: int) -> dict[str, float]:
    """Scalar metrics (what the Trainer logs and picks the best checkpoint by)."""
    from sklearn.metrics import accuracy_score, f1_score

    labels = list(range(num_labels))
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.size == 0:
        return {"accuracy": 0.0, "macro_f1": 0.0, "micro_f1": 0.0, "weighted_f1": 0.0}
    present = sorted(set(y_true.tolist()) | set(y_pred.tolist()))
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        # macro over the classes that occur (in gold or predictions): a class absent from a small
        # validation split must not count as F1 = 0 and drag every run down equally.
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "micro_f1": float(f1_score(y_true, y_pred, labels=labels, average="micro", zero_division=0)),
        "weighted_f1": float(f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)),
    }


def classification_report(y_true: Sequence[int], y_pred: Sequence[int], label_names: Sequence[str]) -> dict[str, Any]:
    """Summary metrics + per-class precision/recall/F1/support + confusion matrix (label order)."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    labels = list(range(len(label_names)))
    report: dict[str, Any] = summary_metrics(y_true, y_pred, len(label_names))
    report["num_samples"] = len(y_true)
    if len(y_true) == 0:
        report["per_class"], report["confusion_matrix"] = {}, []
        return report
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    report["per_class"] = {
        str(name): {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
        for i, name in enumerate(label_names)
    }
    report["label_names"] = [str(n) for n in label_names]
    report["confusion_matrix"] = confusion_matrix(y_true, y_pred, labels=labels).tolist()
    return report


def save_confusion_matrix(
    report: dict[str, Any], out_dir: str | Path, stem: str = "confusion_matrix"
) -> tuple[Path, Path | None]:
    """Write `<stem>.json` (labels + counts) and `<stem>.png` (heatmap); both atomically."""
    out_dir = Path(out_dir)
    names = report.get("label_names", [])
    cm = np.asarray(report.get("confusion_matrix", []), dtype=np.int64)
    json_path = atomic_write_json(
        out_dir / f"{stem}.json", {"labels": names, "matrix": cm.tolist(), "rows": "gold", "columns": "predicted"}
    )
    if cm.size == 0:
        return json_path, None
    png_path = out_dir / f"{stem}.png"
    plot_confusion_matrix(cm, names, png_path)
    return json_path, png_path


def most_confused(cm: np.ndarray, k: int = SUBSET_CLASSES) -> list[int]:
    """Indices of the `k` classes involved in the most errors (as gold or as prediction)."""
    off = cm.astype(np.float64).copy()
    np.fill_diagonal(off, 0)
    score = off.sum(axis=0) + off.sum(axis=1)
    order = np.argsort(-score, kind="stable")[:k]
    return sorted(order.tolist())


def plot_confusion_matrix(cm: np.ndarray, names: Sequence[str], path: str | Path) -> Path:
    """Row-normalised heatmap with counts; label names on both axes."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers; must precede pyplot
    import matplotlib.pyplot as plt

    idx = list(range(len(names)))
    title = "Confusion matrix (rows: gold, normalised; cells: counts)"
    if len(names) > MAX_PLOT_CLASSES:
        idx = most_confused(cm)
        title = f"Confusion matrix: {len(idx)} most-confused of {len(names)} classes"
    sub = cm[np.ix_(idx, idx)]
    rows = sub.sum(axis=1, keepdims=True)
    norm = np.divide(sub, rows, out=np.zeros(sub.shape, dtype=np.float64), where=rows > 0)
    n = len(idx)
    size = min(4 + 0.35 * n, 22)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    labels = [_short(names[i]) for i in idx]
    font = max(5, 11 - n // 6)
    ax.set_xticks(range(n), labels, rotation=60, ha="right", fontsize=font)
    ax.set_yticks(range(n), labels, fontsize=font)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(title)
    if n <= 25:  # counts in cells stay legible only for small matrices
        for i in range(n):
            for j in range(n):
                if sub[i, j]:
                    ax.text(
                        j,
                        i,
                        str(sub[i, j]),
                        ha="center",
                        va="center",
                        fontsize=font - 1,
                        color="white" if norm[i, j] > 0.5 else "black",
                    )
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return Path(path)


def _short(name: str, width: int = 24) -> str:
    name = str(name)
    return name if len(name) <= width else name[: width - 1] + "…"
