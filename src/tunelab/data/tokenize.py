"""Tokenize one split through the task, cached by content (see data/cache.py).

`tokenize_split` returns a memory-mapped `datasets.Dataset` with the task's model inputs plus
two metadata columns (dropped by the Trainer's `remove_unused_columns`, read by length-grouped
samplers and bench): `length`, the number of real tokens after truncation, and
`untruncated_length`, the number before it, from which `length_stats` derives the truncation
rate.

The untruncated length comes from the task when its `tokenize` returns an `untruncated_length`
column (tasks that truncate several pieces separately should). Otherwise we measure it
ourselves: only rows that reached max_length can have been truncated, and those few are run
through the task again with a tokenizer view whose calls do not truncate.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from tunelab.data.cache import cache_key, frame_fingerprint, get_or_build, library_versions, tokenizer_fingerprint
from tunelab.io import sha256_json

if TYPE_CHECKING:
    import pandas as pd
    from datasets import Dataset

    from tunelab.config.schema import Config

BATCH_SIZE = 1000
LENGTH = "length"
UNTRUNCATED = "untruncated_length"


def split_cache_key(frame: pd.DataFrame, task: Any, tokenizer: Any, cfg: Config, split: str) -> str:
    """Everything that decides the tokens of `frame`, hashed."""
    return cache_key(cache_parts(frame, task, tokenizer, cfg, split))


def cache_parts(frame: pd.DataFrame, task: Any, tokenizer: Any, cfg: Config, split: str) -> dict[str, Any]:
    """The key's components (the key is their hash; meta.json stores a hash of each, for diffing)."""
    return {
        "frame": frame_fingerprint(frame),
        "columns": cfg.task.model_dump(mode="json"),  # column mapping, templates, label list
        "split": split,
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "max_length": cfg.data.max_length,
        "truncation_side": cfg.data.truncation_side,
        "task": task.cache_fingerprint(),
        "task_preprocessing_version": task.preprocessing_version,
        "versions": library_versions(),
    }


def tokenize_split(frame: pd.DataFrame, task: Any, tokenizer: Any, cfg: Config, split: str) -> Dataset:
    """The tokenized `frame` from the cache, tokenizing (with a progress bar) on a miss."""
    # The configured side must be the one used; set it before fingerprinting so the key agrees.
    tokenizer.truncation_side = cfg.data.truncation_side
    parts = cache_parts(frame, task, tokenizer, cfg, split)
    key = cache_key(parts)

    def build() -> tuple[Dataset, dict[str, Any]]:
        dataset = _tokenize(frame, task, tokenizer, cfg.data.max_length, split)
        # Per-part hashes: diff two entries' meta.json to see why a run re-tokenized.
        return dataset, {"split": split, "rows": len(dataset), "stats": length_stats(dataset, cfg.data.max_length),
                         "parts": {name: sha256_json(value) for name, value in parts.items()}}

    with _quiet_datasets():
        dataset, _hit = get_or_build(cfg.data.cache_dir, key, build)
    return dataset


def _tokenize(frame: pd.DataFrame, task: Any, tokenizer: Any, max_length: int, split: str) -> Dataset:
    from datasets import Dataset

    source = Dataset.from_pandas(frame.reset_index(drop=True), preserve_index=False)
    with _progress(f"tokenizing {split}", len(source)) as advance:

        def fn(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
            out = dict(task.tokenize(batch, tokenizer))
            lengths = [_real_tokens(out, i) for i in range(len(out["input_ids"]))]
            out[LENGTH] = lengths
            if UNTRUNCATED not in out:
                out[UNTRUNCATED] = _untruncated(batch, task, tokenizer, lengths, max_length)
            advance(len(lengths))
            return out

        return source.map(fn, batched=True, batch_size=BATCH_SIZE, remove_columns=source.column_names,
                          load_from_cache_file=False, new_fingerprint=f"tunelab-{split}")


def _real_tokens(out: dict[str, list[Any]], i: int) -> int:
    mask = out.get("attention_mask")
    return int(sum(mask[i])) if mask is not None else len(out["input_ids"][i])


def _untruncated(batch: dict[str, list[Any]], task: Any, tokenizer: Any, lengths: list[int],
                 max_length: int) -> list[int]:
    full = list(lengths)
    candidates = [i for i, n in enumerate(lengths) if n >= max_length]
    if not candidates:
        return full
    sub = {k: [v[i] for i in candidates] for k, v in batch.items()}
    redo = task.tokenize(sub, _NoTruncation(tokenizer))
    for j, i in enumerate(candidates):
        full[i] = max(lengths[i], len(redo["input_ids"][j]))
    return full


class _NoTruncation:
    """A view of a tokenizer whose __call__ never truncates (everything else is delegated)."""

    def __init__(self, tokenizer: Any):
        self._tokenizer = tokenizer

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["truncation"] = False
        kwargs.pop("max_length", None)
        return self._tokenizer(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tokenizer, name)


def length_stats(dataset: Dataset, max_length: int) -> dict[str, float]:
    """mean/p50/p90/p99/max real tokens per row and the share of rows longer than max_length."""
    lengths = np.asarray(dataset[LENGTH], dtype=np.int64)
    if lengths.size == 0:
        return {"rows": 0, "mean": 0.0, "p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0, "truncation_rate": 0.0}
    full = np.asarray(dataset[UNTRUNCATED], dtype=np.int64) if UNTRUNCATED in dataset.column_names else lengths
    return {
        "rows": int(lengths.size),
        "mean": float(lengths.mean()),
        "p50": float(np.percentile(lengths, 50)),
        "p90": float(np.percentile(lengths, 90)),
        "p99": float(np.percentile(lengths, 99)),
        "max": int(lengths.max()),
        "truncation_rate": float((full > max_length).mean()),
    }


@contextmanager
def _quiet_datasets():
    """Mute datasets' own tqdm bars (map, save_to_disk): we show one rich bar instead."""
    from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    was_disabled = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            enable_progress_bars()


@contextmanager
def _progress(description: str, total: int):
    """A rich progress bar with rows/s and ETA."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.0f} rows/s" if speed else "", style="progress.data.speed")

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=False) as progress:
        task_id = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task_id, n)
