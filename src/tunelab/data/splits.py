"""Read, validate and split the configured data files into train/validation/test (`Splits`).

The partitioning itself (holdout, k-fold, leakage) is data/partition.py.

`load_splits(cfg)` is the single entry point used by validate and the one prepare path
(pipeline/prepare.py). It never loads a model or tokenizer and writes nothing; the manifest it
returns is what the run directory stores as `data_manifest.json`.

Label order (classification): `task.labels` when given, else the order in which labels first
appear in the train file (whole file, before any holdout or fold split), so the label ids are
the same for every fold and every split seed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tunelab.data.partition import holdout, kfold_assign, leakage
from tunelab.data.readers import read_table
from tunelab.data.roles import Roles, roles_for
from tunelab.data.validate import null_labels, row_words, validate_frame, where
from tunelab.errors import ConfigError, DataError
from tunelab.io import sha256_file

if TYPE_CHECKING:
    from tunelab.config.schema import Config


@dataclass
class Splits:
    train: pd.DataFrame
    validation: pd.DataFrame | None
    test: pd.DataFrame | None
    label_names: list[str] | None
    # Fold id (0..k-1) per row of the train *file*, in file order; None without data.kfold.
    folds: np.ndarray | None
    warnings: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)

    def frames(self) -> dict[str, pd.DataFrame]:
        """The splits that exist, by name."""
        out = {"train": self.train, "validation": self.validation, "test": self.test}
        return {k: v for k, v in out.items() if v is not None}


def load_splits(cfg: Config) -> Splits:
    data = cfg.data
    if data.kfold and data.kfold.fold is not None and data.validation_file:
        raise ConfigError(
            "data.kfold.fold is set and data.validation_file is given: choose one validation source",
            hint="drop data.validation_file for k-fold runs, or unset data.kfold.fold",
        )
    files: dict[str, dict[str, Any]] = {}
    warnings: list[str] = []
    pool = _load(cfg, "train", data.train_file, files, warnings)
    given_val = _load(cfg, "validation", data.validation_file, files, warnings) if data.validation_file else None
    test = _load(cfg, "test", data.test_file, files, warnings) if data.test_file else None

    label_col = _label_column(cfg)
    label_names = _label_names(cfg, pool, data.train_file)
    folds, kfold_info = _kfold(cfg, pool, label_col, warnings)
    train, validation, split_info = _split(cfg, pool, given_val, folds, label_col, warnings)
    if label_col and label_names is not None:
        _check_unseen(cfg, train, validation, test, label_col, label_names, split_info["method"], warnings)
    keys = roles_for(cfg.task, "train").keys
    warnings += leakage(
        [
            ("train", data.train_file, train),
            ("validation", data.validation_file or data.train_file, validation),
            ("test", data.test_file or "", test),
        ],
        keys,
    )
    splits = Splits(train, validation, test, label_names, folds, warnings)
    splits.manifest = _manifest(cfg, splits, files, split_info, kfold_info)
    return splits


def _load(cfg: Config, split: str, path: str, files: dict[str, Any], warnings: list[str]) -> pd.DataFrame:
    frame = read_table(path, cfg.data.format, cfg.data.encoding)
    roles = roles_for(cfg.task, split)
    warnings += validate_frame(
        frame,
        path,
        roles,
        imbalance_warn_ratio=cfg.data.imbalance_warn_ratio,
        mojibake_max_share=cfg.data.mojibake_max_share,
    )
    p = Path(path)
    files[split] = {
        "path": str(path),
        "sha256": sha256_file(p),
        "bytes": p.stat().st_size,
        "rows": len(frame),
        "row_kind": frame.attrs.get("row_kind", "row"),
        "columns": _role_dict(roles),
    }
    return frame


def _role_dict(roles: Roles) -> dict[str, Any]:
    return {"text": list(roles.text), "label": roles.label, "id": roles.id}


def _label_column(cfg: Config) -> str | None:
    return cfg.task.label_column_role()


def _label_names(cfg: Config, pool: pd.DataFrame, path: str) -> list[str] | None:
    task = cfg.task
    declared = task.declared_labels()
    column = task.label_column_role()
    if column is None:  # no class label in the data: the config's label set (sft), if any
        return declared
    labels = pool[column]
    if not declared:
        return list(dict.fromkeys(labels))  # first appearance, stable
    allowed = set(declared)
    bad = ~labels.isin(allowed)
    if bad.any():
        row = pool.index[bad.to_numpy().argmax()]
        raise DataError(
            f"{where(pool, path, row, column)}: label {labels[row]!r} at {row_words(pool, row)} is not in task.labels",
            hint=f"task.labels lists {len(allowed)} labels; add it there or fix the row",
        )
    return list(declared)


def _kfold(
    cfg: Config, pool: pd.DataFrame, label_col: str | None, warnings: list[str]
) -> tuple[np.ndarray | None, dict | None]:
    kf = cfg.data.kfold
    if kf is None:
        return None, None
    labels = pool[label_col] if label_col and cfg.data.stratify else None
    folds, warns, stratified = kfold_assign(len(pool), kf.k, kf.seed, labels, cfg.data.train_file)
    warnings += warns
    import hashlib

    info = {
        "k": kf.k,
        "seed": kf.seed,
        "fold": kf.fold,
        "stratified": stratified,
        "fold_sizes": np.bincount(folds, minlength=kf.k).tolist(),
        "assignment_sha256": hashlib.sha256(folds.astype("<i8").tobytes()).hexdigest(),
    }
    return folds, info


def _split(
    cfg: Config,
    pool: pd.DataFrame,
    given_val: pd.DataFrame | None,
    folds: np.ndarray | None,
    label_col: str | None,
    warnings: list[str],
) -> tuple[pd.DataFrame, pd.DataFrame | None, dict[str, Any]]:
    data = cfg.data
    if given_val is not None:
        return pool, given_val, {"method": "file"}
    if folds is not None and data.kfold.fold is not None:
        in_fold = folds == data.kfold.fold
        return pool[~in_fold], pool[in_fold], {"method": "kfold", "fold": data.kfold.fold}
    labels = pool[label_col] if label_col and data.stratify else None
    train, validation, warns, stratified = holdout(
        pool, data.validation_split, data.split_seed, labels, data.train_file
    )
    warnings += warns
    return (
        train,
        validation,
        {
            "method": "holdout",
            "validation_split": data.validation_split,
            "split_seed": data.split_seed,
            "stratified": stratified,
        },
    )


def _check_unseen(
    cfg: Config,
    train: pd.DataFrame,
    validation: pd.DataFrame | None,
    test: pd.DataFrame | None,
    label_col: str,
    label_names: list[str],
    method: str,
    warnings: list[str],
) -> None:
    known = set(train[label_col])
    missing = [name for name in label_names if name not in known]
    if missing:
        warnings.append(f"train split has no example of {len(missing)} label(s): {missing[:5]}")
    if validation is not None:
        unseen = ~validation[label_col].isin(known)
        if unseen.any() and method == "file":
            path = cfg.data.validation_file
            row = validation.index[unseen.to_numpy().argmax()]
            raise DataError(
                f"{where(validation, path, row, label_col)}: label {validation.at[row, label_col]!r} at "
                f"{row_words(validation, row)} never occurs in the train file",
                hint="the model cannot learn a label it never sees; fix the label or add training examples",
            )
    if test is not None and label_col in test.columns:
        labels = test[label_col][~null_labels(test[label_col])]
        unseen = labels[~labels.isin(known)]
        if len(unseen):
            warnings.append(
                f"{cfg.data.test_file}: {len(unseen)} test row(s) have labels never seen in train, "
                f"e.g. {unseen.iloc[0]!r} at {row_words(test, unseen.index[0])}"
            )


def label_counts(frame: pd.DataFrame | None, label_col: str | None) -> dict[str, int] | None:
    if frame is None or not label_col or label_col not in frame.columns:
        return None
    return {str(k): int(v) for k, v in Counter(frame[label_col].dropna()).most_common()}


def _manifest(cfg: Config, splits: Splits, files: dict, split_info: dict, kfold_info: dict | None) -> dict[str, Any]:
    frames = {"train": splits.train, "validation": splits.validation, "test": splits.test}
    return {
        "task": cfg.task.type,
        "files": files,
        "split": split_info,
        "rows": {name: (len(f) if f is not None else 0) for name, f in frames.items()},
        "label_names": splits.label_names,
        "label_counts": {name: label_counts(f, cfg.task.class_column()) for name, f in frames.items()},
        "kfold": kfold_info,
        "warnings": list(splits.warnings),
    }


def save_manifest(splits: Splits, path: str | Path) -> Path:
    """Write the manifest atomically (the run directory's data_manifest.json)."""
    from tunelab.io import atomic_write_json

    return atomic_write_json(path, splits.manifest)
