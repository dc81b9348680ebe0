"""ROUGE-1/2/L F1 and their sum, right for Korean as well as English.

The scoring itself is `rouge_score.rouge_scorer.RougeScorer`; what we add is the tokenizer it
is given, because rouge_score's default tokenizer drops every non-[a-z0-9] character: two
identical Korean strings score 0.0 with it. Tokenizers (`evaluation.rouge.tokenizer`):

- `kiwi`: Kiwi (kiwipiepy) morphemes, e.g. "사람이" -> ["사람", "이"]. The de-facto standard for
  Korean summarization ROUGE (particles and endings become their own tokens).
- `whitespace`: lowercased `str.split()`.
- `char`: lowercased characters, whitespace dropped.
- `default`: rouge_score's own (lowercased [a-z0-9] words, optional Porter stemmer): English.
- `auto`: `kiwi` when most letters in the references are Hangul, else `default`.

Several references per sample (`aggregate`):
- for each sample and each metric (rouge1, rouge2, rougeL) separately, the F1 against every
  reference is computed and reduced with `max` (the best-matching reference, as in most
  multi-reference benchmarks) or `mean`;
- the corpus score of a metric is the plain mean of those per-sample values over samples;
- `rouge_sum` = rouge1 + rouge2 + rougeL of the corpus scores (so it ranges 0..3).
With `max`, rouge1 and rougeL of one sample may come from different references (each metric is
maximised on its own), which is the usual convention.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
TOKENIZERS = ("auto", "kiwi", "whitespace", "char", "default")


@functools.lru_cache(maxsize=1)
def _kiwi() -> Any:
    # Building Kiwi loads its model (~1 s, ~100 MB): once per process, and only when used.
    try:
        from kiwipiepy import Kiwi
    except ImportError as exc:  # pragma: no cover - kiwipiepy is a runtime dependency
        from tunelab.errors import ConfigError

        raise ConfigError("evaluation.rouge.tokenizer kiwi needs kiwipiepy", hint="pip install kiwipiepy") from exc
    return Kiwi()


class KiwiTokenizer:
    """Korean morphemes (surface forms); Latin words lowercased so casing does not matter."""

    def tokenize(self, text: str) -> list[str]:
        if not text or not text.strip():
            return []
        return [tok.form.lower() for tok in _kiwi().tokenize(text)]


class WhitespaceTokenizer:
    def tokenize(self, text: str) -> list[str]:
        return text.lower().split()


class CharTokenizer:
    def tokenize(self, text: str) -> list[str]:
        return [ch for ch in text.lower() if not ch.isspace()]


def hangul_share(texts: Sequence[str]) -> float:
    """Share of Hangul syllables/jamo among all letters of `texts` (0.0 when there are none)."""
    letters = hangul = 0
    for text in texts:
        for ch in text:
            if ch.isalpha():
                letters += 1
                if "\uac00" <= ch <= "\ud7a3" or "\u1100" <= ch <= "\u11ff" or "\u3130" <= ch <= "\u318f":
                    hangul += 1
    return hangul / letters if letters else 0.0


def resolve_tokenizer_name(name: str, references: Sequence[str]) -> str:
    """`auto` -> `kiwi` for Hangul-majority references, else `default`; other names unchanged."""
    if name not in TOKENIZERS:
        from tunelab.errors import ConfigError

        raise ConfigError(
            f"evaluation.rouge.tokenizer: unknown tokenizer {name!r}", hint=f"one of {', '.join(TOKENIZERS)}"
        )
    if name != "auto":
        return name
    return "kiwi" if hangul_share(references) > 0.5 else "default"


def make_scorer(name: str, use_stemmer: bool = False) -> Any:
    """A RougeScorer for a resolved tokenizer name (not `auto`)."""
    from rouge_score import rouge_scorer

    tokenizer = {"kiwi": KiwiTokenizer, "whitespace": WhitespaceTokenizer, "char": CharTokenizer}.get(name)
    if tokenizer is None:  # "default": rouge_score's own tokenizer (honours use_stemmer)
        return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=use_stemmer)
    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), tokenizer=tokenizer())


def _as_reference_lists(references: Sequence[str] | Sequence[Sequence[str]]) -> list[list[str]]:
    out: list[list[str]] = []
    for i, ref in enumerate(references):
        refs = [ref] if isinstance(ref, str) else [r for r in ref if isinstance(r, str)]
        if not refs:
            from tunelab.errors import DataError

            raise DataError(
                f"row {i}: no reference text to score against", hint="every row needs at least one reference summary"
            )
        out.append(refs)
    return out


def sample_scores(
    predictions: Sequence[str],
    references: Sequence[str] | Sequence[Sequence[str]],
    tokenizer: str = "auto",
    aggregate: str = "max",
    use_stemmer: bool = False,
) -> tuple[str, list[dict[str, float]]]:
    """Per-sample F1 of each ROUGE type (references reduced by `aggregate`); returns (tokenizer used, rows)."""
    refs = _as_reference_lists(references)
    if len(refs) != len(predictions):
        raise ValueError(f"{len(predictions)} predictions but {len(refs)} references")
    if aggregate not in ("max", "mean"):
        from tunelab.errors import ConfigError

        raise ConfigError(f"evaluation.rouge.aggregate: unknown value {aggregate!r}", hint="max or mean")
    name = resolve_tokenizer_name(tokenizer, [r for rs in refs for r in rs])
    scorer = make_scorer(name, use_stemmer)
    reduce = max if aggregate == "max" else (lambda xs: sum(xs) / len(xs))
    rows = []
    for pred, sample_refs in zip(predictions, refs):
        per_ref = [scorer.score(ref, pred or "") for ref in sample_refs]
        rows.append({t: float(reduce([s[t].fmeasure for s in per_ref])) for t in ROUGE_TYPES})
    return name, rows


def rouge(
    predictions: Sequence[str],
    references: Sequence[str] | Sequence[Sequence[str]],
    tokenizer: str = "auto",
    aggregate: str = "max",
    use_stemmer: bool = False,
) -> dict[str, Any]:
    """Corpus ROUGE: {"rouge1", "rouge2", "rougeL", "rouge_sum" (F1 means, 0..1 each), "rouge_tokenizer", "n"}."""
    name, rows = sample_scores(predictions, references, tokenizer, aggregate, use_stemmer)
    n = len(rows)
    out: dict[str, Any] = {t: (sum(r[t] for r in rows) / n if n else 0.0) for t in ROUGE_TYPES}
    out["rouge_sum"] = sum(out[t] for t in ROUGE_TYPES)
    out["rouge_tokenizer"] = name
    out["n"] = n
    return out


def rouge_from_config(predictions: Sequence[str], references: Sequence[Any], rouge_cfg: Any) -> dict[str, Any]:
    """`rouge` with the settings of `cfg.evaluation.rouge`."""
    return rouge(
        predictions,
        references,
        tokenizer=rouge_cfg.tokenizer,
        aggregate=rouge_cfg.aggregate,
        use_stemmer=rouge_cfg.use_stemmer,
    )
