"""Scores for ensembles, TTA and baselines: the same metrics as fine-tuned runs.

Classification: accuracy, macro/weighted F1 (sklearn, as in evaluation/). Generation: ROUGE through
`evaluation.rouge` (Kiwi for Korean). `consensus_pick` is the minimum-Bayes-risk selection used
by summarization ensembles and TTA: per sample, the candidate with the highest mean ROUGE against
the other candidates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tunelab.config.schema import TaskSection


def classification_scores(gold: Sequence[Any], pred: Sequence[Any]) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    g = [str(x) for x in gold]
    p = [str(x) for x in pred]
    return {
        "accuracy": float(accuracy_score(g, p)),
        "macro_f1": float(f1_score(g, p, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(g, p, average="weighted", zero_division=0)),
    }


def rouge_scores(pred: Sequence[str], refs: Sequence[Any], rouge_cfg: dict[str, Any] | None = None) -> dict[str, Any]:
    from tunelab.evaluation.rouge import rouge

    cfg = rouge_cfg or {}
    return rouge(
        [p or "" for p in pred],
        list(refs),
        tokenizer=cfg.get("tokenizer", "auto"),
        aggregate=cfg.get("aggregate", "max"),
        use_stemmer=cfg.get("use_stemmer", False),
    )


def score(
    task: TaskSection, gold: Sequence[Any], pred: Sequence[Any], rouge_cfg: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Scores of answer lists, keyed so that `task.primary_metric` is among them: class metrics
    when the task's answers are classes, ROUGE when they are text."""
    if task.class_column():
        return classification_scores(gold, pred)
    return rouge_scores(pred, gold, rouge_cfg)


def consensus_pick(
    candidates: Sequence[Sequence[str]], rouge_cfg: dict[str, Any] | None = None
) -> tuple[list[str], list[int]]:
    """candidates[m][i] = model m's text for sample i -> (chosen texts, chosen model index per sample).

    Ties go to the lowest model index (deterministic). With two candidates the mean agreement is
    symmetric, so the first is kept: consensus needs three or more candidates to mean anything.
    """
    from tunelab.evaluation.rouge import make_scorer, resolve_tokenizer_name

    cfg = rouge_cfg or {}
    n_models = len(candidates)
    n = len(candidates[0]) if n_models else 0
    name = resolve_tokenizer_name(cfg.get("tokenizer", "auto"), [t for c in candidates for t in c if t])
    scorer = make_scorer(name, cfg.get("use_stemmer", False))
    chosen: list[str] = []
    picks: list[int] = []
    for i in range(n):
        texts = [candidates[m][i] or "" for m in range(n_models)]
        agree = [0.0] * n_models
        for a in range(n_models):
            for b in range(a + 1, n_models):
                s = scorer.score(texts[a], texts[b])
                f = (s["rouge1"].fmeasure + s["rouge2"].fmeasure + s["rougeL"].fmeasure) / 3
                agree[a] += f
                agree[b] += f
        best = max(range(n_models), key=lambda m: (agree[m], -m))
        picks.append(best)
        chosen.append(texts[best])
    return chosen, picks
