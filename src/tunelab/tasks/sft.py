"""Instruction tuning: instruction -> response, optionally classification by generation.

With `task.label_set`, `predict` maps every generated answer onto the set, so each row gets a
valid label: first a normalised exact match (case, surrounding punctuation and whitespace
ignored), else the label the model itself finds most likely after the prompt (sum of token
log-probabilities of `label + EOS`; generation can ramble, the likelihood ranking cannot miss).
Scoring is then accuracy / macro-F1 as for the classification task; without a label set the
responses are scored with ROUGE.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING, Any

from tunelab.protocols import Prediction
from tunelab.tasks.generative import GenerativeTask

if TYPE_CHECKING:
    import pandas as pd

    from tunelab.config.schema import Config
    from tunelab.runtime.plan import RuntimePlan


def normalize_label(text: str) -> str:
    """Casefolded, NFKC, inner whitespace collapsed, surrounding punctuation/quotes stripped."""
    text = unicodedata.normalize("NFKC", str(text)).casefold()
    text = " ".join(text.split())
    return text.strip(" \t\n\"'`.,:;!?()[]{}<>*-_")


class SFTTaskImpl(GenerativeTask):
    name = "sft"
    greater_is_better = True
    alias = "instruction"

    def __init__(self, cfg: Config, label_names: list[str] | None = None):
        super().__init__(cfg)
        self.source_column = self.t.instruction_column
        self.target_column = self.t.response_column
        self.label_set: list[str] | None = list(self.t.label_set) if self.t.label_set else None
        if self.label_set:
            keys = [normalize_label(lbl) for lbl in self.label_set]
            if len(set(keys)) != len(keys) or "" in keys:
                from tunelab.errors import ConfigError

                raise ConfigError(
                    "task.label_set: labels must be distinct and non-empty after normalisation",
                    hint=f"got {self.label_set}",
                )

    def encoder_source(self, row: dict[str, Any]) -> str:
        # Instructions are the prompt for encoder-decoders too (the template may add context columns).
        from tunelab.tasks.prompting import _fmt_row

        return _fmt_row(self.spec, row, str(row.get(self.source_column) or ""))

    # ---------------------------------------------------------------- prediction
    def predict(self, model: Any, tokenizer: Any, frame: pd.DataFrame, cfg: Config, plan: RuntimePlan) -> Prediction:
        texts = self.generate(model, tokenizer, frame, cfg, plan)
        ids = self.ids(frame, cfg)
        if not self.label_set:
            return Prediction(ids=ids, columns={cfg.inference.prediction_column: texts})
        labels, sources = self.map_to_labels(model, tokenizer, frame, texts)
        return Prediction(
            ids=ids,
            columns={cfg.inference.prediction_column: labels},
            extra={"generated": texts, "label_source": sources},
        )

    def map_to_labels(
        self, model: Any, tokenizer: Any, frame: pd.DataFrame, texts: list[str]
    ) -> tuple[list[str], list[str]]:
        """(label per row, "match" | "likelihood" per row)."""
        assert self.label_set is not None
        lookup = {normalize_label(lbl): lbl for lbl in self.label_set}
        labels: list[str] = []
        sources: list[str] = []
        rows = self.rows(frame)
        for row, text in zip(rows, texts):
            hit = lookup.get(normalize_label(text))
            if hit is not None:
                labels.append(hit)
                sources.append("match")
                continue
            labels.append(self.most_likely_label(model, tokenizer, row))
            sources.append("likelihood")
        return labels, sources

    def most_likely_label(self, model: Any, tokenizer: Any, row: dict[str, Any]) -> str:
        from tunelab.inference.generation import sequence_logprobs

        assert self.label_set is not None
        prompt = self.example(tokenizer, row, None)["input_ids"]
        completions = [self._label_completion(tokenizer, row, lbl) for lbl in self.label_set]
        scores = sequence_logprobs(model, tokenizer, prompt, completions)
        return self.label_set[max(range(len(scores)), key=scores.__getitem__)]

    def _label_completion(self, tokenizer: Any, row: dict[str, Any], label: str) -> list[int]:
        if self.is_encoder_decoder:
            return self.example(tokenizer, row, label)["labels"]
        full = self.example(tokenizer, row, label)
        return [t for t in full["labels"] if t != -100]

    # ---------------------------------------------------------------- metrics
    def text_metrics(self, predictions: list[str], references: list[list[str]]) -> dict[str, float]:
        if self.label_set:
            lookup = {normalize_label(lbl): i for i, lbl in enumerate(self.label_set)}
            y_true = [lookup.get(normalize_label(r[0]), -1) for r in references]
            y_pred = [lookup.get(normalize_label(p), -1) for p in predictions]
            return self._label_metrics(y_true, y_pred)
        from tunelab.evaluation.rouge import rouge_from_config

        scores = rouge_from_config(predictions, references, self.cfg.evaluation.rouge)
        return {k: v for k, v in scores.items() if isinstance(v, float)}

    def _label_metrics(self, y_true: list[int], y_pred: list[int]) -> dict[str, Any]:
        from tunelab.evaluation.classification import classification_report

        assert self.label_set is not None
        return classification_report(y_true, y_pred, self.label_set)

    def score(self, prediction: Prediction, frame: pd.DataFrame) -> dict[str, Any]:
        """accuracy / macro-F1 (+ per-class, confusion matrix) with a label set, else ROUGE."""
        from tunelab.errors import DataError

        preds = [str(p) for p in prediction.columns[self.cfg.inference.prediction_column]]
        if self.target_column not in frame.columns:
            raise DataError(
                f"column {self.target_column!r} missing from the file to score", hint="score a file with responses"
            )
        refs = [str(r) for r in frame[self.target_column].tolist()]
        if not self.label_set:
            scores: dict[str, Any] = self.text_metrics(preds, [[r] for r in refs])
        else:
            lookup = {normalize_label(lbl): i for i, lbl in enumerate(self.label_set)}
            unknown = sorted({r for r in refs if normalize_label(r) not in lookup})
            if unknown:
                raise DataError(
                    f"column {self.target_column!r}: values {unknown[:5]} are not in task.label_set {self.label_set}",
                    hint="add them to task.label_set or fix the data",
                )
            scores = self._label_metrics(
                [lookup[normalize_label(r)] for r in refs], [lookup[normalize_label(p)] for p in preds]
            )
            if "label_source" in prediction.extra:
                src = prediction.extra["label_source"]
                scores["generated_in_label_set"] = src.count("match") / max(len(src), 1)
        scores["primary_metric"] = self.primary_metric
        return scores
