"""The tokenization cache: hits on identical inputs, misses on every key component, atomic entries."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from data_support import FakeTask, make_cfg
from tiny import make_tokenizer
from tunelab.data import cache as cache_mod
from tunelab.data import tokenize as tok_mod
from tunelab.data.cache import tokenizer_fingerprint
from tunelab.data.readers import read_table
from tunelab.data.tokenize import length_stats, tokenize_split

TEXTS = [
    "please reset my password",
    "배송이 아직 도착하지 않았어요 확인 부탁드립니다",
    "my card was charged twice for one order",
    "hi",
    "회의는 내일 오후 세 시에 시작합니다",
    "where is my parcel? it has not arrived yet",
]


@pytest.fixture
def frame(tmp_path):
    p = tmp_path / "train.csv"
    lines = ["id,text,text2,label"] + [f"{i},{t},{t},{'ab'[i % 2]}" for i, t in enumerate(TEXTS)]
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return read_table(p)


@pytest.fixture
def tok():
    return make_tokenizer()


def _run(frame, tmp_path, tok, task=None, split="train", **data):
    data.setdefault("max_length", 8)
    cfg = make_cfg(tmp_path, task=data.pop("task_cfg", None), **data)
    task = task or FakeTask(cfg, ["a", "b"])
    return tokenize_split(frame, task, tok, cfg, split), task


def _entries(tmp_path):
    return sorted(p.name for p in (tmp_path / "cache").iterdir() if p.is_dir() and not p.name.startswith("."))


def test_same_inputs_hit_without_tokenizing(frame, tmp_path, tok):
    first, task1 = _run(frame, tmp_path, tok)
    second, task2 = _run(frame, tmp_path, tok)
    assert task1.calls > 0 and task2.calls == 0
    assert first["input_ids"] == second["input_ids"] and first["labels"] == [0, 1, 0, 1, 0, 1]
    assert len(_entries(tmp_path)) == 1
    assert second.cache_files, "a hit is memory-mapped from the cache entry"
    meta = json.loads((tmp_path / "cache" / _entries(tmp_path)[0] / "meta.json").read_text())
    assert (
        meta["complete"] and meta["rows"] == len(TEXTS) and set(meta["parts"]) >= {"frame", "tokenizer", "max_length"}
    )


def test_length_column_and_truncation_rate(frame, tmp_path, tok):
    dataset, _ = _run(frame, tmp_path, tok, max_length=8)
    full = [len(tok(t)["input_ids"]) for t in TEXTS]
    assert dataset["length"] == [min(n, 8) for n in full]
    assert dataset["untruncated_length"] == full
    stats = length_stats(dataset, 8)
    assert stats["truncation_rate"] == pytest.approx(np.mean([n > 8 for n in full]))
    assert stats["max"] == 8 and stats["rows"] == len(TEXTS)
    assert stats["p50"] == pytest.approx(np.percentile([min(n, 8) for n in full], 50))
    assert 0 < stats["truncation_rate"] < 1


def _miss_cases(frame, tok):
    """(name, change) pairs; each change returns kwargs for _run that must miss the cache."""
    changed_frame = frame.copy()
    changed_frame.loc[frame.index[0], "label"] = "b"  # one input byte differs
    other_tok = make_tokenizer(vocab_size=500)  # different tokenizer files
    special = make_tokenizer()
    special.add_special_tokens({"additional_special_tokens": ["<|sep|>"]})
    return [
        ("input bytes", lambda: {"frame": changed_frame}),
        ("column mapping", lambda: {"task_cfg": {"type": "classification", "text_column": "text2"}}),
        ("tokenizer files", lambda: {"tok": other_tok}),
        ("special tokens", lambda: {"tok": special}),
        ("max_length", lambda: {"max_length": 9}),
        ("truncation side", lambda: {"truncation_side": "left"}),
        ("template", lambda: {"task_cfg": {"type": "classification", "template": "text: {text}"}}),
        ("split", lambda: {"split": "validation"}),
    ]


@pytest.mark.parametrize("case", range(8))
def test_each_key_component_changed_misses(case, frame, tmp_path, tok):
    name, change = _miss_cases(frame, tok)[case]
    _run(frame, tmp_path, tok)
    kwargs = change()
    f = kwargs.pop("frame", frame)
    t = kwargs.pop("tok", tok)
    _, task = _run(f, tmp_path, t, **kwargs)
    assert task.calls > 0, f"{name}: changed but the cache was reused"
    assert len(_entries(tmp_path)) == 2


def test_task_fingerprint_and_preprocessing_versions_miss(frame, tmp_path, tok, monkeypatch):
    cfg = make_cfg(tmp_path, max_length=8)
    tokenize_split(frame, FakeTask(cfg, ["a", "b"]), tok, cfg, "train")
    changed = (
        FakeTask(cfg, ["a", "b"], extra_fingerprint="new template"),
        FakeTask(cfg, ["a", "b"], preprocessing_version="2"),
        FakeTask(cfg, ["b", "a"]),
    )
    for task in changed:
        tokenize_split(frame, task, tok, cfg, "train")
        assert task.calls > 0
    monkeypatch.setattr(cache_mod, "PREPROCESSING_VERSION", "999")
    task = FakeTask(cfg, ["a", "b"])
    tokenize_split(frame, task, tok, cfg, "train")
    assert task.calls > 0 and len(_entries(tmp_path)) == 5


def test_tokenizer_fingerprint_ignores_name_and_call_state(tmp_path, tok):
    from transformers import AutoTokenizer

    tok.save_pretrained(tmp_path / "one")
    tok.save_pretrained(tmp_path / "two-other-name")
    a = AutoTokenizer.from_pretrained(tmp_path / "one")
    b = AutoTokenizer.from_pretrained(tmp_path / "two-other-name")
    assert tokenizer_fingerprint(a) == tokenizer_fingerprint(b)
    before = tokenizer_fingerprint(a)
    a(["some text here"], truncation=True, max_length=3, padding="max_length")  # sets backend call state
    assert tokenizer_fingerprint(a) == before
    a.padding_side = "left"
    assert tokenizer_fingerprint(a) != before
    b.pad_token = b.eos_token
    assert tokenizer_fingerprint(b) != before


def test_crash_mid_tokenization_leaves_no_entry(frame, tmp_path, tok, monkeypatch):
    monkeypatch.setattr(tok_mod, "BATCH_SIZE", 2)
    cfg = make_cfg(tmp_path, max_length=8)
    with pytest.raises(RuntimeError, match="simulated crash"):
        tokenize_split(frame, FakeTask(cfg, ["a", "b"], fail_after=1), tok, cfg, "train")
    assert _entries(tmp_path) == []
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.endswith(".tmp")]
    task = FakeTask(cfg, ["a", "b"])
    assert len(tokenize_split(frame, task, tok, cfg, "train")) == len(TEXTS) and task.calls > 0


def test_crash_mid_write_and_partial_entries_are_never_read(frame, tmp_path, tok, monkeypatch):
    from datasets import Dataset

    cfg = make_cfg(tmp_path, max_length=8)
    real_save = Dataset.save_to_disk

    def save_then_die(self, path, **kw):
        real_save(self, path, **kw)  # data files are complete, meta.json not yet written
        raise KeyboardInterrupt

    monkeypatch.setattr(Dataset, "save_to_disk", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        tokenize_split(frame, FakeTask(cfg, ["a", "b"]), tok, cfg, "train")
    monkeypatch.setattr(Dataset, "save_to_disk", real_save)
    assert _entries(tmp_path) == []
    # A folder at the key without meta.json (e.g. copied by hand, or a kill before rename by
    # another writer) is not an entry either.
    key = tok_mod.split_cache_key(frame, FakeTask(cfg, ["a", "b"]), tok, cfg, "train")
    real_save(Dataset.from_dict({"input_ids": [[1]], "length": [1]}), str(tmp_path / "cache" / key))
    task = FakeTask(cfg, ["a", "b"])
    dataset = tokenize_split(frame, task, tok, cfg, "train")
    assert task.calls > 0 and len(dataset) == len(TEXTS)
    assert (tmp_path / "cache" / key / "meta.json").exists()


def test_concurrent_writers_build_once(frame, tmp_path, tok):
    cfg = make_cfg(tmp_path, max_length=8)
    tasks = [FakeTask(cfg, ["a", "b"]) for _ in range(2)]
    results = [None, None]

    def work(i):
        results[i] = tokenize_split(frame, tasks[i], make_tokenizer(), cfg, "train")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(t.calls > 0 for t in tasks) == [False, True]
    assert results[0]["input_ids"] == results[1]["input_ids"]


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("input_ids", [[101, 7592, 102], [], [101, 102]]),
        ("attention_mask", [[1, 1, 1], [1]]),
        ("token_type_ids", [[0, 0, 1], [0]]),
        ("token_type_ids", [[0, 0], [0], []]),  # all 0: filled, not converted
        ("attention_mask", [[1, 1, 0], [1]]),  # padded: not all 1
        ("attention_mask", [[0, 0], [0]]),
        ("input_ids", [[1, 2**40]]),  # does not fit int32: stays int64, as datasets keeps it
        ("attention_mask", [[1, 300], [1]]),  # does not fit int8
        ("attention_mask", [[1], None]),  # a null row
        ("token_type_ids", [[[0, 1]], [[1]]]),  # nested one level deeper
        ("input_ids", [[1.5, 2.0]]),  # floats stay floats
        ("labels", [[5, -100], [7]]),  # not an id/mask column: int64
        ("labels", [3, 1, 2]),
        ("text", ["a", None, "b"]),
    ],
)
def test_to_arrow_matches_datasets_writer(name, values):
    import pyarrow as pa
    from datasets.arrow_writer import OptimizedTypedSequence

    expected = pa.array(OptimizedTypedSequence(values, col=name))
    got = tok_mod.to_arrow(name, values)
    assert got.type == expected.type and got.to_pylist() == expected.to_pylist()


def test_real_tokens_from_mask_and_from_ids():
    import pyarrow as pa

    mask = pa.array([[1, 1, 0], [], [1]], type=pa.list_(pa.int8())).slice(0, 3)
    ids = pa.array([[5, 6, 7], [], [8]], type=pa.list_(pa.int32()))
    assert tok_mod._real_tokens({"input_ids": ids, "attention_mask": mask}).tolist() == [2, 0, 1]
    assert tok_mod._real_tokens({"input_ids": ids}).tolist() == [3, 0, 1]
    sliced = pa.array([[1], [1, 1, 1], [1, 0]], type=pa.list_(pa.int8())).slice(1, 2)  # offsets not from 0
    assert tok_mod._real_tokens({"input_ids": sliced, "attention_mask": sliced}).tolist() == [3, 1]


def test_frame_fingerprint_sees_every_cell_boundary_and_null():
    import pandas as pd

    from tunelab.data.cache import frame_fingerprint

    def fp(**columns):
        return frame_fingerprint(pd.DataFrame(columns, dtype=object))

    base = fp(text=["ab", "c", "x"], label=["1", "2", "3"])
    assert base == fp(text=["ab", "c", "x"], label=["1", "2", "3"])
    variants = [
        fp(text=["a", "bc", "x"], label=["1", "2", "3"]),  # same bytes, other boundary
        fp(text=["ab", "c", "y"], label=["1", "2", "3"]),  # one cell
        fp(text=["ab", "c", ""], label=["1", "2", "3"]),  # empty ...
        fp(text=["ab", "c", None], label=["1", "2", "3"]),  # ... is not null
        fp(text=["c", "ab", "x"], label=["2", "1", "3"]),  # row order
        fp(label=["1", "2", "3"], text=["ab", "c", "x"]),  # column order
        fp(text=["ab", "c", "x"], label=["1", "2", 3]),  # a mixed column (pandas' hashing path)
        fp(text=["ab", "c", "x"], label2=["1", "2", "3"]),  # column name
    ]
    assert len({base, *variants}) == len(variants) + 1
    sliced = pd.DataFrame({"text": ["zz", "ab", "c", "x"], "label": ["0", "1", "2", "3"]}, dtype="str").iloc[1:]
    assert frame_fingerprint(sliced) == frame_fingerprint(sliced.copy())  # a view hashes like its copy
