"""Test-time augmentation (`inference.tta`); its measurement against no TTA is experiments/tta_compare.py.

Classification: several views of each input, class probabilities averaged.
  - original:   the text as given (the model truncates it as in training)
  - head:       the first max_length tokens (what right truncation sees)
  - tail:       the last max_length tokens (the end of a long text, which right truncation drops)
  - normalized: Unicode NFKC, runs of whitespace collapsed, repeated punctuation squeezed
Views identical to the original for a row (short texts) are still averaged: they cost nothing
to reason about and keep every row's average over the same number of views.
Summarization: several decodes (greedy, beam search, sampling seeds), consensus selection.

Transformers has no TTA for text, so this module is ours; prediction itself is the task's.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from tunelab.protocols import ClassifierTask, Task

CLASSIFICATION_VIEWS = ("original", "head", "tail", "normalized")
_SPACES = re.compile(r"\s+")
_REPEATED_PUNCT = re.compile(r"([!?.,;:~])\1+")


def normalize_text(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = _REPEATED_PUNCT.sub(r"\1", text)
    return _SPACES.sub(" ", text).strip()


def window(text: str, tokenizer: Any, max_tokens: int, side: str) -> str:
    """The head or tail `max_tokens` tokens of `text`, decoded back to text."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) <= max_tokens:
        return text
    part = ids[:max_tokens] if side == "head" else ids[-max_tokens:]
    return tokenizer.decode(part, skip_special_tokens=True)


def make_views(
    texts: Sequence[str], views: Sequence[str], tokenizer: Any = None, max_tokens: int = 256
) -> dict[str, list[str]]:
    from tunelab.errors import ConfigError

    out: dict[str, list[str]] = {}
    for view in views:
        if view == "original":
            out[view] = list(texts)
        elif view == "normalized":
            out[view] = [normalize_text(t) for t in texts]
        elif view in ("head", "tail"):
            if tokenizer is None:
                raise ConfigError(
                    f"inference.tta.views: {view} needs the model's tokenizer", hint="use original/normalized"
                )
            # Leave room for special tokens (CLS/SEP, BOS/EOS) the task adds when encoding.
            out[view] = [window(t, tokenizer, max(1, max_tokens - 4), view) for t in texts]
        else:
            raise ConfigError(
                f"inference.tta.views: unknown view {view!r}", hint=f"choose from {', '.join(CLASSIFICATION_VIEWS)}"
            )
    return out


def decode_settings(base: dict[str, Any], num_decodes: int) -> list[dict[str, Any]]:
    """`num_decodes` generation settings around the configured one: as configured, beam 4, then sampling seeds."""
    settings = [dict(base)]
    if num_decodes > 1:
        settings.append({**base, "num_beams": max(4, int(base.get("num_beams", 1)) * 2), "do_sample": False})
    for seed in range(num_decodes - len(settings)):
        settings.append({**base, "num_beams": 1, "do_sample": True, "top_p": 0.9, "temperature": 0.8, "seed": seed})
    return settings[:num_decodes]


def verdict(primary: str, without: float, with_tta: float) -> str:
    delta = with_tta - without
    word = "helped" if delta > 1e-12 else ("made no difference" if abs(delta) <= 1e-12 else "hurt")
    return f"TTA {word}: {primary} {with_tta:.4f} with vs {without:.4f} without ({delta:+.4f})"


# ------------------------------------------------------------------ with a task and a trained model
def tta_predict(task: Task, model: Any, tokenizer: Any, frame: Any, cfg: Any, plan: Any) -> tuple[Any, dict[str, Any]]:
    """The task's Prediction with TTA applied, plus each view's/decode's own Prediction."""
    if not cfg.task.generative:  # a classifier averages class probabilities over views
        return _classify_tta(task, model, tokenizer, frame, cfg, plan)
    return _generate_tta(task, model, tokenizer, frame, cfg, plan)


def _classify_tta(task: ClassifierTask, model, tokenizer, frame, cfg, plan):
    from tunelab.protocols import Prediction

    col = cfg.task.text_column
    views = make_views(frame[col].astype(str).tolist(), cfg.inference.tta.views, tokenizer, cfg.data.max_length)
    per_view: dict[str, Any] = {}
    for name, texts in views.items():
        view_frame = frame.copy()
        view_frame[col] = texts
        per_view[name] = task.predict(model, tokenizer, view_frame, cfg, plan)
    avg = np.mean([np.asarray(p.extra["probs"]) for p in per_view.values()], axis=0)
    first = next(iter(per_view.values()))
    merged = Prediction(
        ids=first.ids,
        columns=task.prediction_columns(avg, cfg.inference.top_k),
        extra={"probs": avg, "label_names": list(task.label_names)},
    )
    return merged, per_view


def _generate_tta(task, model, tokenizer, frame, cfg, plan):
    import torch

    from tunelab.protocols import Prediction

    base = cfg.inference.generation.model_dump()
    per_decode: dict[str, Any] = {}
    for setting in decode_settings(base, cfg.inference.tta.num_decodes):
        seed = setting.pop("seed", None)
        if seed is not None:
            torch.manual_seed(seed)
        gen = cfg.inference.generation.model_copy(update=setting)
        local = cfg.model_copy(update={"inference": cfg.inference.model_copy(update={"generation": gen})})
        name = f"sample seed {seed}" if seed is not None else f"beam {setting['num_beams']}"
        per_decode[name] = task.predict(model, tokenizer, frame, local, plan)
    from tunelab.evaluation.scoring import consensus_pick

    col = cfg.inference.prediction_column
    preds = list(per_decode.values())
    texts = [p.columns[col] for p in preds]
    chosen = consensus_pick(texts, cfg.evaluation.rouge.model_dump())[0] if len(preds) > 1 else texts[0]
    return Prediction(ids=preds[0].ids, columns={col: chosen}), per_decode
