"""Reading and writing per-split predictions of a run (validation / out-of-fold / test).

The run directory's `predictions/` holds `<split>.jsonl` (or .parquet/.csv) with `id`, `prediction`
and, when known, the gold `label` (classification) or `reference` (generation). Class probabilities
are a `probs` list column ordered like `label_names`, `prob_<label>` columns, or a sibling
`<split>_probs.npy`. The reader accepts all three so ensembling works whatever the writer chose.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tunelab.errors import RunDirError
from tunelab.io import atomic_path, atomic_write_text

SUFFIXES = (".jsonl", ".parquet", ".csv")
GOLD_COLUMNS = ("label", "reference", "target", "gold")
LABELS_FILE = "label_names.json"


@dataclass
class SplitPreds:
    ids: list[Any]
    predictions: list[Any]
    gold: list[Any] | None = None
    probs: np.ndarray | None = None  # (n, C) ordered like label_names
    label_names: list[str] | None = None
    extra: dict[str, list[Any]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, order: list[int]) -> SplitPreds:
        return SplitPreds(
            ids=[self.ids[i] for i in order],
            predictions=[self.predictions[i] for i in order],
            gold=None if self.gold is None else [self.gold[i] for i in order],
            probs=None if self.probs is None else self.probs[order],
            label_names=self.label_names,
        )


def find_split_file(pred_dir: Path, split: str) -> Path | None:
    for suffix in SUFFIXES:
        cand = pred_dir / f"{split}{suffix}"
        if cand.is_file():
            return cand
    return None


def load_split(run_dir: str | Path, split: str, label_names: list[str] | None = None) -> SplitPreds | None:
    """Predictions of `split` in a run (or experiment) dir; None when that split was not predicted."""
    run_dir = Path(run_dir)
    pred_dir = run_dir / "predictions" if (run_dir / "predictions").is_dir() else run_dir
    path = find_split_file(pred_dir, split)
    if path is None:
        return None
    if label_names is None:
        label_names = _manifest_labels(run_dir)
    return read_preds(path, label_names, _configured_prediction_column(run_dir))


def _configured_prediction_column(run_dir: Path) -> str | None:
    """The run's `inference.prediction_column`: runs written before the fixed `prediction` name
    (and hand-made files) carry the prediction under that name."""
    import yaml

    path = run_dir / "config.yaml"
    if not path.is_file():
        return None
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        return None
    name = ((raw or {}).get("inference") or {}).get("prediction_column") if isinstance(raw, dict) else None
    return name if isinstance(name, str) else None


def read_preds(path: Path, label_names: list[str] | None = None, prediction_column: str | None = None) -> SplitPreds:
    import pandas as pd

    try:
        if path.suffix == ".jsonl":
            frame = pd.read_json(path, lines=True, dtype=False)
        elif path.suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, keep_default_na=False)
    except (ValueError, OSError) as exc:
        raise RunDirError(f"{path}: unreadable predictions file ({exc})", hint="re-run predict for this run") from None
    pred_col = _prediction_column(frame, path, prediction_column)
    ids = frame["id"].tolist() if "id" in frame.columns else list(range(len(frame)))
    gold_col = next((c for c in GOLD_COLUMNS if c in frame.columns and c != pred_col), None)
    gold = [_norm(v) for v in frame[gold_col].tolist()] if gold_col else None
    probs, names = _probs(frame, path, label_names)
    return SplitPreds(
        ids=ids, predictions=[_norm(v) for v in frame[pred_col].tolist()], gold=gold, probs=probs, label_names=names
    )


def _prediction_column(frame: Any, path: Path, configured: str | None) -> str:
    if "prediction" in frame.columns:
        return "prediction"
    if configured and configured in frame.columns:
        return configured
    wanted = "'prediction'" + (f" or {configured!r} (inference.prediction_column)" if configured else "")
    raise RunDirError(
        f"{path}: no {wanted} column (columns: {', '.join(map(str, frame.columns))})",
        hint="predictions files need id and prediction columns; re-run `tunelab predict` for this run",
    )


def _probs(frame: Any, path: Path, label_names: list[str] | None) -> tuple[np.ndarray | None, list[str] | None]:
    if "probs" in frame.columns:
        return np.asarray([list(p) for p in frame["probs"]], dtype=np.float64), label_names
    cols = [c for c in frame.columns if str(c).startswith("prob_")]
    if cols:
        names = [str(c)[5:] for c in cols]
        if label_names:  # reorder to the manifest order
            cols = [f"prob_{n}" for n in label_names if f"prob_{n}" in frame.columns]
            names = [c[5:] for c in cols]
        return frame[cols].to_numpy(dtype=np.float64), names
    npy = path.with_name(f"{path.stem}_probs.npy")
    if npy.is_file():
        return np.load(npy).astype(np.float64), label_names
    return None, label_names


def _norm(v: Any) -> Any:
    # Labels may come back from CSV/JSON as ints; compare them as strings everywhere.
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return str(v)
    return v


def _manifest_labels(run_dir: Path) -> list[str] | None:
    sidecar = run_dir / LABELS_FILE  # written next to combined predictions (oof/, test/, ensemble)
    if sidecar.is_file():
        return json.loads(sidecar.read_text(encoding="utf-8"))
    manifest = run_dir / "data_manifest.json"
    if not manifest.is_file():
        return None
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None
    names = data.get("label_names") or (data.get("label_map") or {}).get("id2label")
    if isinstance(names, dict):
        names = [names[k] for k in sorted(names, key=lambda x: int(x))]
    return [str(n) for n in names] if names else None


def write_preds(path: Path, preds: SplitPreds) -> Path:
    """Write predictions as JSONL (atomic): id, prediction, gold, probs (ordered like label_names)."""
    lines = []
    for i, ident in enumerate(preds.ids):
        row: dict[str, Any] = {"id": _jsonable(ident), "prediction": preds.predictions[i]}
        if preds.gold is not None:
            row["label" if preds.label_names else "reference"] = preds.gold[i]
        if preds.probs is not None:
            row["probs"] = [round(float(p), 6) for p in preds.probs[i]]
        for key, values in preds.extra.items():
            row[key] = values[i]
        lines.append(json.dumps(row, ensure_ascii=False))
    atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))
    if preds.label_names:
        atomic_write_text(path.parent / LABELS_FILE, json.dumps(preds.label_names, ensure_ascii=False))
    return path


def write_submission(
    path: Path, ids: list[Any], predictions: list[Any], id_column: str = "id", prediction_column: str = "prediction"
) -> Path:
    """CSV submission file (id, prediction), atomically."""
    import pandas as pd

    frame = pd.DataFrame({id_column: ids, prediction_column: predictions})
    with atomic_path(path, suffix=".csv") as tmp:
        frame.to_csv(tmp, index=False)
    return path


def _jsonable(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def align(reference: SplitPreds, other: SplitPreds, where: str) -> SplitPreds:
    """Reorder `other` to `reference`'s ids; refuse when the two do not cover the same samples."""
    if [str(i) for i in reference.ids] == [str(i) for i in other.ids]:
        return other
    index = {str(i): k for k, i in enumerate(other.ids)}
    missing = [i for i in reference.ids if str(i) not in index]
    if missing or len(index) != len(reference.ids):
        raise RunDirError(
            f"{where}: predictions cover different samples ({len(missing)} ids missing, e.g. {missing[:3]})",
            hint="ensemble runs trained on the same split (same data, split_seed and kfold)",
        )
    return other.subset([index[str(i)] for i in reference.ids])
