"""ROUGE-1/2/L F1 and their sum, right for Korean as well as English.

The scoring itself is `rouge_score.rouge_scorer.RougeScorer`; what we add is the tokenizer it
is given, because rouge_score's default tokenizer drops every non-[a-z0-9] character: two
identical Korean strings score 0.0 with it. Tokenizers (`evaluation.rouge.tokenizer`):

- `kiwi`: Kiwi (kiwipiepy) morphemes, e.g. "사람이" -> ["사람", "이"]. The de-facto standard for
  Korean summarization ROUGE (particles and endings become their own tokens). What it does with
  the rest of a Korean summary (each is tested in tests/test_gen_rouge.py):
  - speaker and masking tags (`#Person1#`, `#PhoneNumber#`) are one token each, lowercased, and
    a particle after one is its own token: "#Person1#은" -> ["#person1#", "은"] (Kiwi alone
    reads it as the hashtags "#Person1" and "#은", and splits the tag apart in other contexts);
  - numbers are one token each: "3.5GB" -> ["3.5", "gb"], "10:30" -> ["10:30"], "2024년" ->
    ["2024", "년"];
  - punctuation and symbols are dropped (".", ",", "!", "(", "%", ...), as rouge_score drops
    them for English, so a shared full stop is not counted as a matched word;
  - English words are whole words, lowercased: "LoRA로" -> ["lora", "로"]; a hyphen splits
    ("GPT-4o" -> ["gpt", "4", "o"]); other scripts (Cyrillic, CJK) are kept as Kiwi's chunks.
- `whitespace`: lowercased `str.split()`.
- `char`: lowercased characters, whitespace dropped.
- `default`: rouge_score's own (lowercased [a-z0-9] words, optional Porter stemmer): English.
- `auto`: `default` when every letter of the references is ASCII (English: the reference
  implementation, with its stemmer), otherwise `kiwi`, which keeps every script: Korean mixed
  with English terms or speaker tags is scored on all of its words, never on the Latin part alone.

No tokenizer drops letters silently: when the chosen one loses more than `MAX_LOST_SHARE` of
the letters of the references (e.g. `default` on Korean), a warning says how much and what to
use instead, once per process and tokenizer.

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
import re
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


# `#Person1#`, `#PhoneNumber#`: the speaker / masking tags of DialogSum-style data.
TAG_RE = re.compile(r"#[^#\s]+#")
_PLACEHOLDER = "qxzwtag"  # a Latin word Kiwi keeps whole and reads particles after, like a name


class KiwiTokenizer:
    """Korean morphemes (surface forms), tags whole, punctuation dropped, Latin lowercased."""

    def tokenize(self, text: str) -> list[str]:
        if not text or not text.strip():
            return []
        masked, tags = _mask_tags(text)
        out = []
        for tok in _kiwi().tokenize(masked):
            form = tok.form.lower()
            if form in tags:
                out.append(tags[form])
            elif any(ch.isalnum() for ch in form):  # pure punctuation / symbols carry no content
                out.append(form)
        return out


def _mask_tags(text: str) -> tuple[str, dict[str, str]]:
    """Tags -> placeholder words (so Kiwi keeps each whole and splits the particle after it)."""
    tags: dict[str, str] = {}
    by_tag: dict[str, str] = {}

    def swap(m: re.Match[str]) -> str:
        tag = m.group(0).lower()
        if tag not in by_tag:
            word = _PLACEHOLDER + _letters(len(by_tag))
            by_tag[tag], tags[word] = word, tag
        before = text[m.start() - 1] if m.start() else " "
        after = text[m.end()] if m.end() < len(text) else " "
        # An ASCII letter or digit next to the placeholder would merge into the same Latin word.
        return (
            (" " if before.isascii() and before.isalnum() else "")
            + by_tag[tag]
            + (" " if after.isascii() and after.isalnum() else "")
        )

    return TAG_RE.sub(swap, text), tags


def _letters(n: int) -> str:
    out = ""
    while True:
        out = chr(ord("a") + n % 26) + out
        n = n // 26 - 1
        if n < 0:
            return out


class WhitespaceTokenizer:
    def tokenize(self, text: str) -> list[str]:
        return text.lower().split()


class CharTokenizer:
    def tokenize(self, text: str) -> list[str]:
        return [ch for ch in text.lower() if not ch.isspace()]


def resolve_tokenizer_name(name: str, references: Sequence[str]) -> str:
    """`auto` -> `default` when every letter is ASCII, else `kiwi` (keeps every script); other names unchanged."""
    if name not in TOKENIZERS:
        from tunelab.errors import ConfigError

        raise ConfigError(
            f"evaluation.rouge.tokenizer: unknown tokenizer {name!r}", hint=f"one of {', '.join(TOKENIZERS)}"
        )
    if name != "auto":
        return name
    ascii_only = all(ch.isascii() for text in references for ch in text if ch.isalpha())
    return "default" if ascii_only else "kiwi"


MAX_LOST_SHARE = 0.01  # letters of the references a tokenizer may lose before we say so
_LOST_SAMPLE = 500  # references checked (the first ones): enough to see a whole script vanish
_warned: set[str] = set()


def lost_letter_share(name: str, references: Sequence[str]) -> float:
    """Share of the references' letters that tokenizer `name` drops (a sample of the first ones).

    Counted per reference and never below zero: Kiwi restores contracted syllables ("했다" ->
    "하", "었", "다"), which adds letters, and must not hide letters lost elsewhere. Measured
    without the stemmer: a stem is shorter than its word but loses no word.
    """
    sample = [r for r in references[:_LOST_SAMPLE] if r]
    tokenizer = make_scorer(name)._tokenizer
    letters = lost = 0
    for ref in sample:
        have = sum(ch.isalpha() for ch in ref)
        kept = sum(ch.isalpha() for tok in tokenizer.tokenize(ref) for ch in tok)
        letters += have
        lost += max(0, have - kept)
    return lost / letters if letters else 0.0


def warn_if_letters_lost(name: str, references: Sequence[str]) -> float:
    """Warn (once per process and tokenizer) when `name` drops more than MAX_LOST_SHARE of the letters."""
    share = lost_letter_share(name, references)
    if share > MAX_LOST_SHARE and name not in _warned:
        _warned.add(name)
        from tunelab import ui

        ui.warn(
            f"ROUGE tokenizer {name!r} drops {share:.0%} of the letters of the references (e.g. Hangul), "
            "so the score ignores those words; set evaluation.rouge.tokenizer: auto (or kiwi for Korean)"
        )
    return share


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
    flat = [r for rs in refs for r in rs]
    name = resolve_tokenizer_name(tokenizer, flat)
    warn_if_letters_lost(name, flat)
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
