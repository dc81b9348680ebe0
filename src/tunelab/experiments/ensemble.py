"""`tunelab ensemble EXP_DIR`: combine an experiment's successful variants, vs the best single model.

Members are the variants whose validation predictions exist (out-of-fold predictions under
k-fold). Every method is scored on the same validation rows as the single models; fitted methods
(weighted, stacking) by cross-fitting. `auto` computes every method that applies and keeps the best.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.table import Table

from tunelab import ui
from tunelab.errors import ConfigError, RunDirError
from tunelab.evaluation.scoring import consensus_pick, score
from tunelab.experiments import ensemble_math as em
from tunelab.experiments.kfold import rouge_cfg_of, task_of, variant_split
from tunelab.experiments.predictions import SplitPreds, align, write_preds, write_submission
from tunelab.experiments.state import load_experiment
from tunelab.io import atomic_write_json

if TYPE_CHECKING:
    from tunelab.config.schema import TaskSection

CLASSIFICATION_METHODS = ("mean", "weighted", "vote", "stacking")
GENERATION_METHODS = ("consensus", "best")


def ensemble_command(exp_dir: Path, method: str = "auto") -> dict[str, Any]:
    exp_dir = Path(exp_dir)
    experiment = load_experiment(exp_dir)
    task = task_of(exp_dir, experiment)
    methods = _methods(task, method)
    members = _members(exp_dir, experiment, "validation")
    if len(members) < 2:
        raise RunDirError(
            f"{exp_dir}: ensembling needs at least 2 variants with validation predictions, found {len(members)}",
            hint="check `experiment.json` for failed runs; retry them with `tunelab experiment SPEC --only NAME`",
        )
    primary = task.primary_metric
    rouge_cfg = rouge_cfg_of(exp_dir, experiment)
    singles = {name: score(task, p.gold, p.predictions, rouge_cfg) for name, p in members.items()}
    order = sorted(members, key=lambda n: -singles[n][primary])  # best first: vote ties go to the best model
    best = order[0]
    if not task.generative:  # a classifier's members carry class probabilities to combine
        results, combined = _classification(members, order, methods)
    else:
        results, combined = _generation(members, order, methods, singles, primary, rouge_cfg)
    gold = members[best].gold
    for name, preds in combined.items():
        results[name]["scores"] = score(task, gold, preds.predictions, rouge_cfg)
    chosen = max(results, key=lambda n: results[n]["scores"][primary])
    report = _report(task, primary, members, singles, best, results, chosen)
    write_preds(exp_dir / "ensemble" / "validation.jsonl", combined[chosen])
    report["submission"] = _submission(exp_dir, experiment, task, order, chosen, results[chosen], rouge_cfg)
    atomic_write_json(exp_dir / "ensemble.json", report)
    _print(report)
    return report


def _methods(task: TaskSection, method: str) -> list[str]:
    allowed = GENERATION_METHODS if task.generative else CLASSIFICATION_METHODS
    if method == "auto":
        return list(allowed)
    if method not in allowed:
        raise ConfigError(
            f"--method {method}: not available for {task.type}", hint=f"choose one of auto, {', '.join(allowed)}"
        )
    return [method]


def _members(exp_dir: Path, experiment: dict[str, Any], split: str) -> dict[str, SplitPreds]:
    out: dict[str, SplitPreds] = {}
    for v in experiment["variants"]:
        preds = variant_split(exp_dir, experiment, v["name"], split)
        if preds is not None and (split != "validation" or preds.gold is not None):
            out[v["name"]] = preds
    if out and split == "validation":
        first = next(iter(out.values()))
        out = {n: align(first, p, f"{exp_dir}: variant {n}") for n, p in out.items()}
    return out


def _classification(members: dict[str, SplitPreds], order: list[str], methods: list[str]):
    labels = members[order[0]].label_names
    has_probs = labels is not None and all(members[n].probs is not None for n in order)
    index = {lab: i for i, lab in enumerate(labels or [])}
    results: dict[str, dict[str, Any]] = {}
    combined: dict[str, SplitPreds] = {}
    ids = members[order[0]].ids
    if "vote" in methods:
        results["vote"] = {}
        combined["vote"] = SplitPreds(ids, em.majority_vote([members[n].predictions for n in order]))
    if not has_probs:
        return results, combined  # probability methods need probabilities from every member
    y = np.asarray([index[str(g)] for g in members[order[0]].gold])
    probs = [members[n].probs for n in order]
    make = {
        "mean": lambda: (em.mean_probs(probs), {}),
        "weighted": lambda: (
            em.crossfit_weighted(probs, y),
            {"weights": dict(zip(order, em.fit_weights(probs, y).round(4).tolist()))},
        ),
        "stacking": lambda: (
            em.crossfit_stacking(probs, y, len(labels)),
            {"model": "LogisticRegression on log-probabilities, cross-fitted"},
        ),
    }
    for name in [m for m in methods if m in make]:
        p, extra = make[name]()
        results[name] = extra
        combined[name] = SplitPreds(ids, [labels[j] for j in p.argmax(axis=1)], probs=p, label_names=labels)
    return results, combined


def _generation(members, order, methods, singles, primary, rouge_cfg):
    results: dict[str, dict[str, Any]] = {}
    combined: dict[str, SplitPreds] = {}
    ids = members[order[0]].ids
    if "consensus" in methods:
        chosen, picks = consensus_pick([members[n].predictions for n in order], rouge_cfg)
        results["consensus"] = {"picked": {n: picks.count(i) for i, n in enumerate(order)}}
        combined["consensus"] = SplitPreds(ids, chosen)
    if "best" in methods:
        results["best"] = {"model": order[0]}
        combined["best"] = SplitPreds(ids, members[order[0]].predictions)
    return results, combined


def _report(task, primary, members, singles, best, results, chosen) -> dict[str, Any]:
    best_v, ens_v = singles[best][primary], results[chosen]["scores"][primary]
    delta = ens_v - best_v
    word = "beats" if delta > 1e-12 else ("ties" if abs(delta) <= 1e-12 else "loses to")
    verdict = (
        f"ensemble ({chosen}) {word} the best single model ({best}) on {primary}: "
        f"{ens_v:.4f} vs {best_v:.4f} ({delta:+.4f}) on the same {len(members[best])} validation rows"
    )
    return {
        "task": task.type,
        "primary_metric": primary,
        "validation_rows": len(members[best]),
        "members": list(members),
        "single": singles,
        "best_single": {"name": best, "score": best_v},
        "methods": results,
        "chosen": chosen,
        "ensemble_score": ens_v,
        "gain": delta,
        "verdict": verdict,
        "note": "weighted and stacking scores are cross-fitted: no row is scored by a combiner fitted on it",
    }


def _submission(exp_dir, experiment, task, order, chosen, result, rouge_cfg) -> str | None:
    tests = _members(exp_dir, experiment, "test")
    if not all(n in tests for n in order):
        return None
    first = tests[order[0]]
    tests = {n: align(first, tests[n], f"{exp_dir}: test predictions of {n}") for n in order}
    labels = first.label_names
    if chosen == "vote" or (not task.generative and any(tests[n].probs is None for n in order)):
        preds = em.majority_vote([tests[n].predictions for n in order])
    elif not task.generative:
        probs = [tests[n].probs for n in order]
        if chosen == "weighted":
            p = em.mean_probs(probs, [result["weights"][n] for n in order])
        elif chosen == "stacking":
            p = _refit_stacker(exp_dir, experiment, order, labels, probs)
        else:
            p = em.mean_probs(probs)
        preds = [labels[j] for j in p.argmax(axis=1)]
    elif chosen == "consensus":
        preds, _ = consensus_pick([tests[n].predictions for n in order], rouge_cfg)
    else:
        preds = tests[order[0]].predictions
    path = write_submission(exp_dir / "ensemble" / "submission.csv", first.ids, preds)
    return str(path.relative_to(exp_dir))


def _refit_stacker(exp_dir, experiment, order, labels, test_probs):
    # The test-time stacker is fitted on all validation (OOF) rows; only its score was cross-fitted.
    val = _members(exp_dir, experiment, "validation")
    index = {lab: i for i, lab in enumerate(labels)}
    y = np.asarray([index[str(g)] for g in val[order[0]].gold])
    model = em.fit_stacker([val[n].probs for n in order], y, len(labels))
    return em.stacker_probs(model, test_probs, len(labels))


def _print(report: dict[str, Any]) -> None:
    primary = report["primary_metric"]
    table = Table(title=f"ensemble vs single models ({primary}, {report['validation_rows']} validation rows)")
    table.add_column("model / method")
    table.add_column(primary, justify="right")
    for name, s in sorted(report["single"].items(), key=lambda kv: -kv[1][primary]):
        table.add_row(f"single: {name}", f"{s[primary]:.4f}")
    for name, r in report["methods"].items():
        mark = " (chosen)" if name == report["chosen"] else ""
        table.add_row(f"ensemble: {name}{mark}", f"{r['scores'][primary]:.4f}")
    console = ui.console()
    console.print(table)
    console.print(("[green]" if report["gain"] > 0 else "[yellow]") + report["verdict"] + "[/]")
    if report.get("submission"):
        console.print(f"submission: {report['submission']}")
