"""Partitioning one frame, pure functions: stratified holdout, k-fold assignment, cross-split leakage.

data/splits.py applies them to the configured files (`load_splits`).

Frames keep their index (the row's position in its file) through every split, so an error or
warning about a split row still points at the right line of the right file.
"""

from __future__ import annotations

import warnings as _warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from tunelab.errors import DataError

_MAX_EXAMPLES = 3


def holdout(
    df: pd.DataFrame, fraction: float, seed: int, labels: pd.Series | None, path: str
) -> tuple[pd.DataFrame, pd.DataFrame, list[str], bool]:
    """(train, validation, warnings, stratified). Stratified by `labels` when given and possible."""
    from sklearn.model_selection import train_test_split

    if len(df) < 2:
        raise DataError(
            f"{path}: {len(df)} row(s): too few to split off a validation set",
            hint="add data or give data.validation_file",
        )
    n_val = max(1, int(round(len(df) * fraction)))
    n_val = min(n_val, len(df) - 1)
    warns: list[str] = []
    if labels is not None:
        try:
            train_idx, val_idx = train_test_split(
                np.arange(len(df)), test_size=n_val, random_state=seed, stratify=labels.to_numpy()
            )
            return _take(df, train_idx), _take(df, val_idx), warns, True
        except ValueError as exc:
            # sklearn refuses a class with 1 example or fewer validation rows than classes.
            warns.append(
                f"{path}: validation split is not stratified ({str(exc).splitlines()[0]}); "
                "rare classes may be missing from validation"
            )
    train_idx, val_idx = train_test_split(np.arange(len(df)), test_size=n_val, random_state=seed)
    return _take(df, train_idx), _take(df, val_idx), warns, False


def _take(df: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    # Back in file order: deterministic, and easier to read when inspected.
    return df.iloc[np.sort(positions)]


def kfold_assign(
    n_rows: int, k: int, seed: int, labels: pd.Series | None, path: str
) -> tuple[np.ndarray, list[str], bool]:
    """(fold id per row, warnings, stratified): StratifiedKFold by label when possible, else KFold."""
    from sklearn.model_selection import KFold, StratifiedKFold

    if n_rows < k:
        raise DataError(f"{path}: {n_rows} rows cannot be split into data.kfold.k={k} folds", hint="lower data.kfold.k")
    folds = np.full(n_rows, -1, dtype=np.int64)
    warns: list[str] = []
    stratified = labels is not None
    if labels is not None:
        counts = labels.value_counts()
        if counts.min() < k:
            warns.append(
                f"{path}: {int((counts < k).sum())} label(s) have fewer than k={k} examples "
                f"(e.g. {counts.idxmin()!r}: {int(counts.min())}); some folds lack them"
            )
        try:
            with _warnings.catch_warnings():
                _warnings.simplefilter("ignore")  # the "least populated class" warning is reported above
                folder = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
                splits = list(folder.split(np.zeros(n_rows), labels.to_numpy()))
        except ValueError as exc:
            warns.append(f"{path}: k-fold is not stratified ({str(exc).splitlines()[0]})")
            stratified = False
    if not stratified:
        splits = list(KFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(n_rows)))
    for fold, (_train, val) in enumerate(splits):
        folds[val] = fold
    return folds, warns, stratified


def leakage(frames: Sequence[tuple[str, str, pd.DataFrame]], keys: Sequence[str]) -> list[str]:
    """Warnings for inputs (the `keys` columns, whitespace-stripped) shared by two splits.

    `frames` is [(split name, path, frame)] in order; each later split is compared with each
    earlier one.
    """
    found: list[str] = []
    seen: list[tuple[str, str, pd.DataFrame, pd.Series]] = []
    for name, path, frame in frames:
        if frame is None or not all(k in frame.columns for k in keys):
            continue
        key = _key(frame, keys)
        for other_name, other_path, _other, other_key in seen:
            # As object arrays: pandas' isin on Arrow strings boxes every value (~10x slower).
            shared = key.astype(object).isin(other_key.astype(object))
            if not shared.any():
                continue
            rows = frame.index[shared.to_numpy()][:_MAX_EXAMPLES]
            first = key[rows[0]]
            match = other_key.index[(other_key == first).to_numpy().argmax()]
            found.append(
                f"leakage: {int(shared.sum())} {name} row(s) have the same input as a {other_name} row; "
                f"e.g. {first[:60]!r} at {path}:{rows[0]} and {other_path}:{match}"
            )
        seen.append((name, path, frame, key))
    return found


def _key(frame: pd.DataFrame, keys: Sequence[str]) -> pd.Series:
    parts = [frame[k].fillna("").astype(str).str.strip() for k in keys]
    key = parts[0]
    for part in parts[1:]:
        key = key + "\x1f" + part
    return key
