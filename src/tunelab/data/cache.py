"""The content-addressed tokenization cache: key derivation and atomic entries on disk.

An entry lives at `<cache_dir>/<key>/` (a `datasets.save_to_disk` folder plus `meta.json`).
Stale reuse is impossible by construction: the key hashes everything that decides the tokens
(frame content, column mapping, the tokenizer's state, max_length, truncation side, the task's
fingerprint and preprocessing version, our PREPROCESSING_VERSION and library versions), so a
changed input is a different folder. An entry is built in a temp folder and renamed into place
once complete, and it is read only when its meta.json (written last) names its own key, so a
crash mid-write leaves nothing that can be read. A file lock per key makes a second process
wait for the first and then reuse its entry.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tunelab.io import atomic_dir, atomic_write_json, sha256_file, sha256_json

if TYPE_CHECKING:
    import pandas as pd
    from datasets import Dataset

# Bump when tokenize_split's own processing changes (the length columns, how rows are fed).
PREPROCESSING_VERSION = "1"
META = "meta.json"
# init_kwargs that name where a tokenizer came from, not how it tokenizes.
_LOCATION_KWARGS = (
    "name_or_path",
    "_commit_hash",
    "cache_dir",
    "revision",
    "token",
    "local_files_only",
    "trust_remote_code",
    "_from_auto",
)


def frame_fingerprint(frame: pd.DataFrame) -> str:
    """Hash of a frame's column names and every cell (row order included, index excluded)."""
    h = hashlib.sha256(json.dumps([str(c) for c in frame.columns]).encode("utf-8"))
    h.update(len(frame).to_bytes(8, "little"))
    for i in range(frame.shape[1]):
        h.update(_column_digest(frame.iloc[:, i]))
    return h.hexdigest()


def _column_digest(column: pd.Series) -> bytes:
    """A digest of every cell of `column`, in order.

    Text columns (all we read) are hashed from their Arrow form: each value's UTF-8 length, the
    null mask and the bytes themselves, which is ~10x cheaper than pandas' per-cell hashing.
    Anything else (numbers, mixed objects) uses pandas' row hashes. The tag keeps the two apart.
    """
    import pandas as pd
    import pyarrow as pa

    try:
        array = pa.array(column, from_pandas=True)
    except (TypeError, ValueError, pa.ArrowException):
        array = None
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array is not None and (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        width = np.int32 if pa.types.is_string(array.type) else np.int64
        offsets = np.frombuffer(array.buffers()[1], dtype=width)[array.offset : array.offset + len(array) + 1]
        data = array.buffers()[2]
        h = hashlib.sha256(b"arrow-text")
        h.update(np.diff(offsets).astype("<i8").tobytes())
        h.update(array.is_null().to_numpy(zero_copy_only=False).tobytes())
        if data is not None:
            h.update(memoryview(data)[offsets[0] : offsets[-1]])
        return h.digest()
    rows = pd.util.hash_pandas_object(column, index=False).to_numpy()
    return hashlib.sha256(b"pandas-rows" + rows.astype("<u8").tobytes()).digest()


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """Hash of what decides a tokenizer's output: vocab/merges/normalizers, special tokens, sides.

    Deliberately not its name or path: the same files under another name hit, and a retrained
    tokenizer saved under the old name misses.
    """
    return sha256_json(tokenizer_state(tokenizer))


def tokenizer_state(tokenizer: Any) -> dict[str, Any]:
    state: dict[str, Any] = {
        "special_tokens": {k: str(v) for k, v in sorted(tokenizer.special_tokens_map.items())},
        "special_ids": {t: tokenizer.convert_tokens_to_ids(t) for t in sorted(map(str, tokenizer.all_special_tokens))},
        "padding_side": tokenizer.padding_side,
        "truncation_side": tokenizer.truncation_side,
        "model_max_length": min(int(tokenizer.model_max_length), 2**62),
        "chat_template": getattr(tokenizer, "chat_template", None),
        "init": _behaviour_kwargs(getattr(tokenizer, "init_kwargs", {})),
    }
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        serialized = json.loads(backend.to_str())
        # The backend records the truncation/padding of the *last call*; that is call state, not
        # tokenizer identity (our max_length and sides are separate key parts).
        serialized.pop("truncation", None)
        serialized.pop("padding", None)
        state["backend"] = hashlib.sha256(json.dumps(serialized, sort_keys=True).encode("utf-8")).hexdigest()
    else:  # slow (python/sentencepiece) tokenizer: its vocab plus the files it loaded from
        state["vocab"] = sha256_json(sorted(tokenizer.get_vocab().items()))
        state["files"] = {name: sha256_file(p) for name, p in sorted(_vocab_files(tokenizer).items())}
    return state


def _behaviour_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in sorted(kwargs.items()):
        if key in _LOCATION_KWARGS or key.endswith(("_file", "_path", "_dir")):
            continue
        if value is None or isinstance(value, (bool, int, float, str)):
            out[key] = value
        elif hasattr(value, "content"):  # AddedToken
            out[key] = str(value)
    return out


def _vocab_files(tokenizer: Any) -> dict[str, Path]:
    files = {}
    for attr in getattr(tokenizer, "vocab_files_names", {}):
        path = getattr(tokenizer, attr, None)
        if isinstance(path, (str, Path)) and Path(path).is_file():
            files[attr] = Path(path)
    return files


def library_versions() -> dict[str, str]:
    import datasets
    import tokenizers
    import transformers

    return {
        "datasets": datasets.__version__,
        "tokenizers": tokenizers.__version__,
        "transformers": transformers.__version__,
    }


def cache_key(parts: dict[str, Any]) -> str:
    return sha256_json({"preprocessing_version": PREPROCESSING_VERSION, **parts})


def load_entry(cache_dir: str | Path, key: str) -> Dataset | None:
    """The cached dataset for `key`, or None when absent, incomplete or unreadable."""
    entry = Path(cache_dir) / key
    meta = read_meta(entry)
    if meta is None or meta.get("key") != key or not meta.get("complete"):
        return None
    from datasets import load_from_disk

    try:
        return load_from_disk(str(entry))
    except Exception:  # a damaged entry is a miss; it is rebuilt and replaced
        return None


def read_meta(entry: Path) -> dict[str, Any] | None:
    try:
        return json.loads((entry / META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def get_or_build(
    cache_dir: str | Path, key: str, build: Callable[[], tuple[Dataset, dict[str, Any]]]
) -> tuple[Dataset, bool]:
    """(dataset, hit). On a miss `build()` returns (dataset, meta extras) and the entry is stored.

    Holds a per-key file lock so concurrent processes build once; the second waits, then hits.
    """
    from filelock import FileLock

    root = Path(cache_dir)
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f".{key}.lock")):
        found = load_entry(root, key)
        if found is not None:
            return found, True
        _remove_leftovers(root, key)
        dataset, extras = build()
        from tunelab.safety.disk import enospc_guard, ensure_free_space
        from tunelab.safety.faults import maybe_fault

        # Fail before writing when the entry cannot fit: a full disk mid-write is a clear error.
        ensure_free_space(root, dataset.data.nbytes, f"tokenization cache entry {key[:12]}")
        with enospc_guard(f"tokenization cache entry {key[:12]}", root), atomic_dir(root / key) as tmp:
            dataset.save_to_disk(str(tmp))
            maybe_fault("tokenize")  # test-only (inert unless TUNELAB_FAULT is set): kill mid-entry
            # meta.json last: its presence (with our key) is what makes the entry readable.
            atomic_write_json(tmp / META, {**extras, "key": key, "created": time.time(), "complete": True})
        loaded = load_entry(root, key)
        assert loaded is not None, f"cache entry {key} unreadable right after writing"
        return loaded, False


def _remove_leftovers(root: Path, key: str) -> None:
    # Temp folders of a writer that died (we hold the key's lock, so none is in progress).
    for stale in root.glob(f".{key}.*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
