"""k-fold results: out-of-fold (OOF) predictions per variant, and test predictions across folds.

Fold f's validation split is fold f of the k-fold assignment, so concatenating the folds'
validation predictions covers every training row exactly once (the OOF set ensembles are fitted
on). Test predictions are combined across folds: mean of probabilities (classification) or
consensus selection (generation).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tunelab.evaluation.scoring import consensus_pick, score
from tunelab.experiments.predictions import SplitPreds, align, load_split, write_preds

if TYPE_CHECKING:
    from tunelab.config.schema import TaskSection


def variant_split(exp_dir: Path, experiment: dict[str, Any], variant: str, split: str) -> SplitPreds | None:
    """A variant's predictions of `split` ("validation" = OOF under k-fold), or None."""
    if experiment.get("kfold"):
        path_split = "oof" if split == "validation" else split
        return load_split(exp_dir / path_split, variant) if (exp_dir / path_split).is_dir() else None
    rec = experiment["runs"].get(variant)
    if not rec or rec.get("status") != "ok":
        return None
    return load_split(exp_dir / rec["run_dir"], split)


def combine_folds(exp_dir: Path, experiment: dict[str, Any]) -> dict[str, Any]:
    task = task_of(exp_dir, experiment)
    rouge_cfg = rouge_cfg_of(exp_dir, experiment)
    results: dict[str, Any] = {}
    for variant in [v["name"] for v in experiment["variants"]]:
        recs = sorted(
            (r for r in experiment["runs"].values() if r.get("variant") == variant), key=lambda r: r.get("fold") or 0
        )
        ok = [r for r in recs if r.get("status") == "ok"]
        k = experiment["kfold"]["k"]
        if len(ok) < k:
            results[variant] = {"status": "incomplete", "folds_ok": len(ok), "k": k}
            continue
        results[variant] = _combine_variant(exp_dir, variant, ok, task, rouge_cfg)
    return results


def _combine_variant(
    exp_dir: Path, variant: str, recs: list[dict[str, Any]], task: TaskSection, rouge_cfg: dict[str, Any]
) -> dict[str, Any]:
    out: dict[str, Any] = {"status": "ok", "folds_ok": len(recs)}
    vals = [load_split(exp_dir / r["run_dir"], "validation") for r in recs]
    if all(v is not None for v in vals):
        oof = concat(vals)  # type: ignore[arg-type]
        write_preds(exp_dir / "oof" / f"{variant}.jsonl", oof)
        out["oof_file"] = f"oof/{variant}.jsonl"
        out["oof_rows"] = len(oof)
        if oof.gold is not None:
            out["oof_scores"] = score(task, oof.gold, oof.predictions, rouge_cfg)
    tests = [load_split(exp_dir / r["run_dir"], "test") for r in recs]
    if tests and all(t is not None for t in tests):
        combined = combine_test(tests, task, rouge_cfg, where=f"variant {variant}")  # type: ignore[arg-type]
        write_preds(exp_dir / "test" / f"{variant}.jsonl", combined)
        out["test_file"] = f"test/{variant}.jsonl"
    return out


def concat(parts: list[SplitPreds]) -> SplitPreds:
    probs = [p.probs for p in parts]
    return SplitPreds(
        ids=[i for p in parts for i in p.ids],
        predictions=[x for p in parts for x in p.predictions],
        gold=[g for p in parts for g in p.gold] if all(p.gold is not None for p in parts) else None,
        probs=np.concatenate(probs) if all(p is not None for p in probs) else None,
        label_names=parts[0].label_names,
    )


def combine_test(parts: list[SplitPreds], task: TaskSection, rouge_cfg: dict[str, Any], where: str) -> SplitPreds:
    """Class probabilities averaged (or a vote without them) for a classifier; consensus for text."""
    first = parts[0]
    parts = [first] + [align(first, p, where) for p in parts[1:]]
    if not task.generative and all(p.probs is not None for p in parts) and first.label_names:
        mean = np.mean([p.probs for p in parts], axis=0)
        labels = [first.label_names[j] for j in mean.argmax(axis=1)]
        return SplitPreds(ids=first.ids, predictions=labels, probs=mean, label_names=first.label_names)
    if not task.generative:
        from tunelab.experiments.ensemble_math import majority_vote

        return SplitPreds(ids=first.ids, predictions=majority_vote([p.predictions for p in parts]))
    chosen, _ = consensus_pick([p.predictions for p in parts], rouge_cfg)
    return SplitPreds(ids=first.ids, predictions=chosen)


def task_of(exp_dir: Path, experiment: dict[str, Any]) -> TaskSection:
    """The experiment's task section as its runs were configured (the first successful run's
    config.yaml), else the defaults of the experiment's task type."""
    from tunelab.config.schema import task_section
    from tunelab.run_summary import collect_run

    for rec in experiment["runs"].values():
        if rec.get("status") == "ok":
            section = task_section(collect_run(exp_dir / rec["run_dir"]).config.get("task"))
            if section is not None:
                return section
    section = task_section({"type": experiment.get("task") or "classification"})
    assert section is not None  # a known task type always validates with its defaults
    return section


def rouge_cfg_of(exp_dir: Path, experiment: dict[str, Any]) -> dict[str, Any]:
    from tunelab.run_summary import collect_run

    for rec in experiment["runs"].values():
        if rec.get("status") == "ok":
            cfg = collect_run(exp_dir / rec["run_dir"]).config
            return ((cfg.get("evaluation") or {}).get("rouge")) or {}
    return {}
