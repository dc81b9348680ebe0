"""Ensemble arithmetic and `tunelab ensemble` on an experiment directory."""

from __future__ import annotations

import json

import numpy as np
import pytest

from exp_support import LABELS, noisy_probs, write_experiment
from tunelab.evaluation.scoring import classification_scores
from tunelab.experiments import ensemble_math as em
from tunelab.experiments.ensemble import ensemble_command


def test_fitted_weights_lie_on_simplex_and_prefer_the_good_model():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 200)
    good, bad = noisy_probs(y, 3, 0.9, rng), noisy_probs(y, 3, 0.2, rng)
    w = em.fit_weights([good, bad], y)
    assert w.min() >= 0 and abs(w.sum() - 1) < 1e-9
    assert w[0] > 0.7
    w5 = em.fit_weights([good, bad, good, bad, good], y)  # >4 models: the scipy path
    assert w5.min() >= -1e-12 and abs(w5.sum() - 1) < 1e-6


def test_simplex_grid_covers_simplex():
    grid = em.simplex_grid(3, 0.25)
    assert len(grid) == 15  # C(4+2, 2)
    assert all(abs(g.sum() - 1) < 1e-12 and g.min() >= 0 for g in grid)


def test_vote_ties_go_to_the_first_model_deterministically():
    a, b, c = ["x", "y", "z"], ["y", "y", "x"], ["z", "x", "x"]
    assert em.majority_vote([a, b, c]) == ["x", "y", "x"]  # row 0: three-way tie -> first model
    assert em.majority_vote([c, b, a]) == ["z", "y", "x"]  # same votes, other order -> other winner
    assert em.majority_vote([["p"], ["q"]]) == ["p"]


def test_stacking_beats_a_bad_single_model_and_learns_a_swapped_model():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 300)
    bad = noisy_probs(y, 3, 0.3, rng)
    # A model that is right but with its classes rotated: useless alone, perfect for a stacker.
    rotated = np.roll(noisy_probs(y, 3, 0.9, rng), 1, axis=1)
    stacked = em.crossfit_stacking([bad, rotated], y, 3)
    acc_stacked = (stacked.argmax(1) == y).mean()
    assert acc_stacked > 0.8
    assert acc_stacked > (bad.argmax(1) == y).mean() + 0.3
    assert (em.mean_probs([bad, rotated]).argmax(1) == y).mean() < 0.6  # the plain mean cannot undo it


def test_crossfit_weighted_never_scores_rows_with_weights_fitted_on_them():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 60)
    p = [noisy_probs(y, 3, 0.7, rng), noisy_probs(y, 3, 0.5, rng)]
    out = em.crossfit_weighted(p, y, n_splits=5)
    assert out.shape == p[0].shape and np.allclose(out.sum(1), 1)


def test_ensemble_command_reports_against_best_single_and_writes_submission(tmp_path):
    exp = write_experiment(tmp_path / "exp", {"strong": 0.8, "medium": 0.7, "weak": 0.6}, failed="broken")
    report = ensemble_command(exp, method="auto")
    saved = json.loads((exp / "ensemble.json").read_text())
    assert saved["members"] == ["strong", "medium", "weak"]  # the failed run is not a member
    assert saved["best_single"]["name"] == "strong"
    assert set(saved["methods"]) == {"mean", "weighted", "vote", "stacking"}
    best = max(saved["methods"].values(), key=lambda r: r["scores"]["macro_f1"])["scores"]["macro_f1"]
    assert saved["ensemble_score"] == pytest.approx(best)
    assert saved["gain"] == pytest.approx(saved["ensemble_score"] - saved["single"]["strong"]["macro_f1"])
    assert ("beats" in saved["verdict"]) == (saved["gain"] > 0)
    w = saved["methods"]["weighted"]["weights"]
    assert abs(sum(w.values()) - 1) < 1e-3 and min(w.values()) >= 0
    sub = (exp / saved["submission"]).read_text().splitlines()
    assert sub[0] == "id,prediction" and len(sub) == 31
    assert all(line.split(",")[1] in LABELS for line in sub[1:])
    # The validation predictions of the chosen method score what ensemble.json says.
    rows = [json.loads(x) for x in (exp / "ensemble" / "validation.jsonl").read_text().splitlines()]
    gold = [json.loads(x)["label"] for x in (exp / "runs/strong/predictions/validation.jsonl").read_text().splitlines()]
    assert classification_scores(gold, [r["prediction"] for r in rows])["macro_f1"] == pytest.approx(
        report["ensemble_score"]
    )


def test_ensemble_single_method_and_errors(tmp_path):
    from tunelab.errors import ConfigError, RunDirError

    exp = write_experiment(tmp_path / "exp", {"a": 0.8, "b": 0.5})
    report = ensemble_command(exp, method="vote")
    assert list(report["methods"]) == ["vote"]
    with pytest.raises(ConfigError, match="consensus"):
        ensemble_command(exp, method="consensus")
    lone = write_experiment(tmp_path / "lone", {"a": 0.8}, failed="b")
    with pytest.raises(RunDirError, match="at least 2"):
        ensemble_command(lone)
