"""Ensemble arithmetic on probability matrices (pure numpy/sklearn, no files).

`probs` arguments are lists of (n, C) arrays, one per model, columns in the same label order.
Fitted combiners (weights, stacking) are scored by cross-fitting: the rows a combiner is scored on
are never the rows it was fitted on, so the gain over the best single model is not flattered.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

EPS = 1e-12


def mean_probs(probs: Sequence[np.ndarray], weights: Sequence[float] | None = None) -> np.ndarray:
    stack = np.stack([np.asarray(p, dtype=np.float64) for p in probs])
    w = np.full(len(probs), 1.0 / len(probs)) if weights is None else np.asarray(weights, dtype=np.float64)
    return np.tensordot(w, stack, axes=1)


def log_loss(probs: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(probs[np.arange(len(y)), y], EPS, 1.0)
    return float(-np.mean(np.log(p)))


def fit_weights(probs: Sequence[np.ndarray], y: np.ndarray, grid_step: float = 0.05) -> np.ndarray:
    """Simplex weights (w >= 0, sum 1) minimising the log-loss of the weighted mean.

    Few models: exhaustive grid on the simplex (exact, no optimiser quirks). More: scipy SLSQP from
    the uniform start. Both stay on the simplex by construction.
    """
    m = len(probs)
    if m == 1:
        return np.ones(1)
    if m <= 4:
        best, best_w = np.inf, np.full(m, 1.0 / m)
        for w in simplex_grid(m, grid_step):
            loss = log_loss(mean_probs(probs, w), y)
            if loss < best - 1e-12:
                best, best_w = loss, w
        return best_w
    from scipy.optimize import minimize

    res = minimize(
        lambda w: log_loss(mean_probs(probs, w), y),
        np.full(m, 1.0 / m),
        method="SLSQP",
        bounds=[(0.0, 1.0)] * m,
        constraints=[{"type": "eq", "fun": lambda w: np.sum(w) - 1.0}],
    )
    w = np.clip(res.x, 0.0, None)
    return w / w.sum()


def simplex_grid(m: int, step: float) -> list[np.ndarray]:
    n = int(round(1.0 / step))
    out: list[np.ndarray] = []

    def rec(prefix: list[int], left: int) -> None:
        if len(prefix) == m - 1:
            out.append(np.asarray([*prefix, left], dtype=np.float64) / n)
            return
        for k in range(left + 1):
            rec([*prefix, k], left - k)

    rec([], n)
    return out


def majority_vote(predictions: Sequence[Sequence[Any]]) -> list[Any]:
    """Per sample, the most frequent label; a tie goes to the earliest model (pass models best-first)."""
    out = []
    for votes in zip(*predictions):
        counts = Counter(votes)
        top = max(counts.values())
        out.append(next(v for v in votes if counts[v] == top))
    return out


def _folds(y: np.ndarray, n_splits: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import KFold, StratifiedKFold

    counts = np.bincount(y)
    smallest = counts[counts > 0].min()
    k = max(2, min(n_splits, len(y) // 2))
    if smallest >= k:
        return list(StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))
    return list(KFold(k, shuffle=True, random_state=seed).split(np.zeros(len(y))))


def crossfit_weighted(probs: Sequence[np.ndarray], y: np.ndarray, n_splits: int = 5, seed: int = 0) -> np.ndarray:
    """Out-of-fold weighted-mean probabilities: each row combined with weights fitted without it."""
    out = np.zeros_like(np.asarray(probs[0], dtype=np.float64))
    for train, held in _folds(y, n_splits, seed):
        w = fit_weights([p[train] for p in probs], y[train])
        out[held] = mean_probs([p[held] for p in probs], w)
    return out


def stacking_features(probs: Sequence[np.ndarray]) -> np.ndarray:
    # Log-probabilities: the logistic regression then combines models like a learned product of experts.
    return np.concatenate([np.log(np.clip(np.asarray(p, dtype=np.float64), EPS, 1.0)) for p in probs], axis=1)


def fit_stacker(probs: Sequence[np.ndarray], y: np.ndarray, n_classes: int, seed: int = 0) -> Any:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1.0, max_iter=1000, random_state=seed)
    model.fit(stacking_features(probs), y)
    return model


def stacker_probs(model: Any, probs: Sequence[np.ndarray], n_classes: int) -> np.ndarray:
    # The stacker only knows the classes it saw; put its columns back in the full label order.
    raw = model.predict_proba(stacking_features(probs))
    out = np.zeros((raw.shape[0], n_classes))
    out[:, model.classes_] = raw
    return out


def crossfit_stacking(
    probs: Sequence[np.ndarray], y: np.ndarray, n_classes: int, n_splits: int = 5, seed: int = 0
) -> np.ndarray:
    out = np.zeros((len(y), n_classes))
    for train, held in _folds(y, n_splits, seed):
        if len(np.unique(y[train])) < 2:  # a fold with one class cannot fit a classifier
            out[held] = mean_probs([p[held] for p in probs])
            continue
        model = fit_stacker([p[train] for p in probs], y[train], n_classes, seed)
        out[held] = stacker_probs(model, [p[held] for p in probs], n_classes)
    return out
