"""Abstractive summarization (dialogue -> summary) on an encoder-decoder or a causal LM.

Everything shared with sft (tokenization, model, trainer, generation) is in tasks/generative.py;
this adds the columns and ROUGE (evaluation/rouge.py, Kiwi morphemes for Korean). The encoder of
a seq2seq model reads the raw input column (the KoBART/BART fine-tuning convention; the prompt
template is for causal LMs, which need to be told what to do).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tunelab.tasks.generative import GenerativeTask

if TYPE_CHECKING:
    import pandas as pd

    from tunelab.config.schema import Config
    from tunelab.protocols import Prediction


class SummarizationTaskImpl(GenerativeTask):
    name = "summarization"
    greater_is_better = True
    alias = "input"

    def __init__(self, cfg: Config):
        super().__init__(cfg)
        self.source_column = self.t.input_column
        self.target_column = self.t.target_column

    def text_metrics(self, predictions: list[str], references: list[list[str]]) -> dict[str, float]:
        from tunelab.evaluation.rouge import rouge_from_config

        scores = rouge_from_config(predictions, references, self.cfg.evaluation.rouge)
        return {k: v for k, v in scores.items() if isinstance(v, float)}

    def score(self, prediction: Prediction, frame: pd.DataFrame) -> dict[str, Any]:
        """ROUGE-1/2/L F1 + rouge_sum of the predicted summaries against the target column(s)."""
        from tunelab.evaluation.rouge import rouge_from_config

        texts = prediction.columns[self.cfg.inference.prediction_column]
        scores = rouge_from_config(texts, self.references(frame), self.cfg.evaluation.rouge)
        scores["primary_metric"] = self.primary_metric
        return scores
