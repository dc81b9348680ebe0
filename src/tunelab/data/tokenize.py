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
from itertools import chain, repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tunelab import ui
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
        return dataset, {
            "split": split,
            "rows": len(dataset),
            "stats": length_stats(dataset, cfg.data.max_length),
            "parts": {name: sha256_json(value) for name, value in parts.items()},
        }

    with ui.quiet_datasets():
        dataset, _hit = get_or_build(cfg.data.cache_dir, key, build)
    return dataset


def _tokenize(frame: pd.DataFrame, task: Any, tokenizer: Any, max_length: int, split: str) -> Dataset:
    from datasets import Dataset
    from datasets.table import InMemoryTable

    # Given fingerprints: datasets would otherwise hash both whole tables to derive them.
    source = Dataset(
        InMemoryTable.from_pandas(frame.reset_index(drop=True), preserve_index=False),
        fingerprint=f"tunelab-{split}-source",
    )
    if len(source) == 0:  # nothing to tokenize: keep datasets' own (empty) result
        return source.map(lambda b: b, batched=True, remove_columns=source.column_names)
    # The same Python values `Dataset.map(batched=True)` would pass the task (its batches are
    # `to_pydict()` of table slices), converted in one pass instead of once per batch.
    rows = source.data.table.to_pydict()
    tables = []
    with _progress(f"tokenizing {split}", len(source)) as advance:
        for start in range(0, len(source), BATCH_SIZE):
            batch = {name: values[start : start + BATCH_SIZE] for name, values in rows.items()}
            tables.append(_tokenize_batch(batch, task, tokenizer, max_length))
            advance(tables[-1].num_rows)
    return Dataset(InMemoryTable(pa.concat_tables(tables)), fingerprint=f"tunelab-{split}")


def _tokenize_batch(batch: dict[str, list[Any]], task: Any, tokenizer: Any, max_length: int) -> pa.Table:
    """One batch through the task, as an Arrow table with the length columns added.

    Built straight from the task's lists with pyarrow (C) rather than through datasets' writer,
    whose per-column type probing cost about a quarter of the tokenizer's own time.
    """
    out = dict(task.tokenize(batch, tokenizer))
    columns = {name: to_arrow(name, values) for name, values in out.items()}
    lengths = _real_tokens(columns)
    columns[LENGTH] = pa.array(lengths, type=pa.int64())
    if UNTRUNCATED not in columns:
        full = _untruncated(batch, task, tokenizer, lengths, max_length)
        columns[UNTRUNCATED] = pa.array(full, type=pa.int64())
    return pa.table(columns)


# The narrow int types datasets' writer (OptimizedTypedSequence) gives these columns, kept so a
# cache entry has the same schema as before; a value that does not fit stays int64, as there.
_NARROW_INTS = {
    "input_ids": pa.int32(),
    "attention_mask": pa.int8(),
    "token_type_ids": pa.int8(),
    "special_tokens_mask": pa.int8(),
}
# The value a whole column usually holds (tried first; see _flat_list_array).
_FILLS = {"attention_mask": (1, 0), "token_type_ids": (0, 1), "special_tokens_mask": (0, 1)}


def to_arrow(name: str, values: list[Any]) -> pa.Array:
    """`values` as the Arrow array datasets would store for column `name`."""
    narrow = _NARROW_INTS.get(name)
    if narrow is not None and _rows_of_ints(values):
        try:
            return _flat_list_array(values, narrow, _FILLS.get(name, ()))
        except (TypeError, ValueError, OverflowError):  # a value that does not fit, a None row...
            pass
    # General path: pyarrow infers the type strictly (ints and floats give floats, bools among
    # ints fail); id/mask columns are then cast down with a checked cast, as datasets does.
    try:
        array = pa.array(values)
    except (TypeError, pa.ArrowException):
        array = None
    if array is None or not _plain(array.type):  # structs, mixed types, extension types...
        from datasets.arrow_writer import OptimizedTypedSequence

        return pa.array(OptimizedTypedSequence(values, col=name))
    if narrow is not None and _leaf(array.type) == pa.int64():
        try:
            array = array.cast(_with_leaf(array.type, narrow))  # a safe cast: raises when a value does not fit
        except pa.ArrowInvalid:
            pass
    return array


def _rows_of_ints(values: list[Any]) -> bool:
    """Is `values` a list of lists of ints, judged by its first non-empty row (the tokenizer's
    id and mask columns are, by construction)?"""
    first = next((row for row in values if isinstance(row, list) and row), None)
    return first is not None and type(first[0]) is int


def _flat_list_array(rows: list[list[int]], leaf: pa.DataType, fills: tuple[int, ...] = ()) -> pa.ListArray:
    """list<leaf> from rows of ints via one flat numpy pass: ~2x faster than pa.array on the
    nested lists. Raises OverflowError when a value does not fit `leaf` and TypeError on a row
    that is not a list. Only for tokenizer id/mask columns, which hold ints by construction
    (a stray float after an int first value would be truncated here, not kept as a float)."""
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    offsets = np.zeros(len(rows) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    total = int(offsets[-1])
    dtype = leaf.to_pandas_dtype()
    # Unpadded masks are all 1 and single-segment token_type_ids all 0: list.count (C, no
    # per-value boxing) proves it and the values are then filled, not converted one by one.
    for fill in fills:
        if sum(map(list.count, rows, repeat(fill, len(rows)))) == total:
            return pa.ListArray.from_arrays(pa.array(offsets), pa.array(np.full(total, fill, dtype=dtype)))
    flat = np.fromiter(chain.from_iterable(rows), dtype=dtype, count=total)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat))


def _plain(dtype: pa.DataType) -> bool:
    leaf = _leaf(dtype)
    return (
        pa.types.is_integer(leaf)
        or pa.types.is_floating(leaf)
        or pa.types.is_string(leaf)
        or pa.types.is_boolean(leaf)
        or pa.types.is_null(leaf)
    )


def _leaf(dtype: pa.DataType) -> pa.DataType:
    while pa.types.is_list(dtype):
        dtype = dtype.value_type
    return dtype


def _with_leaf(dtype: pa.DataType, leaf: pa.DataType) -> pa.DataType:
    return pa.list_(_with_leaf(dtype.value_type, leaf)) if pa.types.is_list(dtype) else leaf


def _real_tokens(columns: dict[str, pa.Array]) -> np.ndarray:
    """Real tokens per row: the attention mask's sum, or the number of input_ids without one."""
    mask = columns.get("attention_mask")
    source = mask if mask is not None else columns["input_ids"]
    if not pa.types.is_list(source.type) or not pa.types.is_integer(source.type.value_type):
        # Unusual shapes (nested lists): the plain per-row definition.
        rows = source.to_pylist()
        return np.array([sum(r) if mask is not None else len(r) for r in rows], dtype=np.int64)
    if mask is None:
        return pc.list_value_length(source).to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = source.offsets.to_numpy()
    flat = source.values.slice(offsets[0], offsets[-1] - offsets[0]).to_numpy(zero_copy_only=False)
    sums = np.concatenate([[0], np.cumsum(flat, dtype=np.int64)])
    return sums[offsets[1:] - offsets[0]] - sums[offsets[:-1] - offsets[0]]


def _untruncated(
    batch: dict[str, list[Any]], task: Any, tokenizer: Any, lengths: np.ndarray, max_length: int
) -> np.ndarray:
    full = lengths.copy()
    candidates = np.flatnonzero(lengths >= max_length).tolist()
    if not candidates:
        return full
    sub = {k: [v[i] for i in candidates] for k, v in batch.items()}
    redo = task.tokenize(sub, _NoTruncation(tokenizer))
    for j, i in enumerate(candidates):
        full[i] = max(int(lengths[i]), len(redo["input_ids"][j]))
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
    lengths = _column(dataset, LENGTH)
    if lengths.size == 0:
        return {"rows": 0, "mean": 0.0, "p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0, "truncation_rate": 0.0}
    full = _column(dataset, UNTRUNCATED) if UNTRUNCATED in dataset.column_names else lengths
    return {
        "rows": int(lengths.size),
        "mean": float(lengths.mean()),
        "p50": float(np.percentile(lengths, 50)),
        "p90": float(np.percentile(lengths, 90)),
        "p99": float(np.percentile(lengths, 99)),
        "max": int(lengths.max()),
        "truncation_rate": float((full > max_length).mean()),
    }


def _column(dataset: Dataset, name: str) -> np.ndarray:
    # From the Arrow column in one go: `dataset[name]` would format it row by row in Python.
    if getattr(dataset, "_indices", None) is not None:  # a select/shuffle view: rows via the mapping
        return np.asarray(dataset.with_format("numpy")[name], dtype=np.int64)
    return np.asarray(dataset.data.column(name).to_numpy(), dtype=np.int64)


@contextmanager
def _progress(description: str, total: int):
    """The progress bar (ui.progress) with rows/s and ETA."""
    from tunelab import ui

    with ui.progress(unit="rows") as progress:
        task_id = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task_id, n)


LENGTHS_FILE = "token_lengths.json"  # read by the report's length histogram
MAX_SAVED_LENGTHS = 5000


def save_length_profile(run_dir: Path, datasets: dict[str, Any], stats: dict[str, Any], max_length: int) -> None:
    """Token length statistics + a sample of per-row lengths, for the report's length histogram.

    Called by `tunelab train` after tokenization (the manifest is written before tokenizing).
    Lengths are the untruncated ones when the tokenizer recorded them, so the histogram shows what
    truncation cut off.
    """
    from tunelab.io import atomic_write_json

    lengths: dict[str, list[int]] = {}
    for name, ds in datasets.items():
        col = UNTRUNCATED if UNTRUNCATED in ds.column_names else LENGTH
        if col in ds.column_names:
            values = np.asarray(ds[col], dtype=np.int64)
            if values.size > MAX_SAVED_LENGTHS:  # a fixed-seed sample keeps the file small
                values = np.random.default_rng(0).choice(values, MAX_SAVED_LENGTHS, replace=False)
            lengths[name] = values.tolist()
    atomic_write_json(Path(run_dir) / LENGTHS_FILE, {"max_length": max_length, "stats": stats, "lengths": lengths})
