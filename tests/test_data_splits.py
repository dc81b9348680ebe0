"""load_splits: stratified holdout, k-fold, label order, unseen labels, leakage, manifest."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from data_support import labelled_rows, make_cfg, write_csv
from tunelab.data.splits import load_splits, save_manifest
from tunelab.errors import ConfigError, DataError
from tunelab.io import sha256_file


@pytest.fixture
def train(tmp_path):
    return write_csv(tmp_path / "train.csv", labelled_rows({"a": 100, "b": 60, "c": 40}))


def test_stratified_holdout_proportions_and_determinism(tmp_path, train):
    cfg = make_cfg(tmp_path, validation_split=0.2, split_seed=7)
    s1, s2 = load_splits(cfg), load_splits(cfg)
    assert Counter(s1.validation["label"]) == {"a": 20, "b": 12, "c": 8}
    assert len(s1.train) == 160
    assert s1.validation.index.tolist() == s2.validation.index.tolist()
    assert set(s1.train.index).isdisjoint(s1.validation.index)
    other = load_splits(make_cfg(tmp_path, validation_split=0.2, split_seed=8))
    assert other.validation.index.tolist() != s1.validation.index.tolist()
    assert s1.manifest["split"] == {"method": "holdout", "validation_split": 0.2, "split_seed": 7, "stratified": True}


def test_singleton_class_falls_back_to_random_split_with_warning(tmp_path):
    write_csv(tmp_path / "train.csv", labelled_rows({"a": 30, "b": 20, "solo": 1}))
    splits = load_splits(make_cfg(tmp_path))
    assert splits.manifest["split"]["stratified"] is False
    assert any("not stratified" in w for w in splits.warnings)
    assert any("single example" in w for w in splits.warnings)


def test_label_order_is_first_appearance_or_task_labels(tmp_path):
    write_csv(tmp_path / "train.csv", labelled_rows({"zeta": 5, "alpha": 5, "mid": 5}))
    assert load_splits(make_cfg(tmp_path)).label_names == ["zeta", "alpha", "mid"]
    fixed = make_cfg(tmp_path, task={"type": "classification", "labels": ["mid", "alpha", "zeta", "extra"]})
    assert load_splits(fixed).label_names == ["mid", "alpha", "zeta", "extra"]
    narrow = make_cfg(tmp_path, task={"type": "classification", "labels": ["zeta", "alpha"]})
    with pytest.raises(DataError, match=r"train\.csv:12:label: label 'mid' at line 12 of the file is not in task"):
        load_splits(narrow)


def test_kfold_assignment_is_stratified_deterministic_and_selects_validation(tmp_path, train):
    cfg = make_cfg(tmp_path, kfold={"k": 5, "seed": 3})
    splits = load_splits(cfg)
    folds = splits.folds
    assert folds.shape == (200,) and set(folds) == {0, 1, 2, 3, 4}
    assert np.bincount(folds).tolist() == [40] * 5
    assert len(splits.train) == 180  # the holdout split still applies when no fold is chosen
    frame = load_splits(make_cfg(tmp_path, kfold={"k": 5, "seed": 3, "fold": 2}))
    np.testing.assert_array_equal(frame.folds, folds)
    pool_lines = np.arange(2, 202)  # line numbers of the train file rows, in order
    assert frame.validation.index.tolist() == pool_lines[folds == 2].tolist()
    assert frame.train.index.tolist() == pool_lines[folds != 2].tolist()
    assert Counter(frame.validation["label"]) == {"a": 20, "b": 12, "c": 8}
    assert frame.label_names == splits.label_names
    kf = frame.manifest["kfold"]
    assert kf["k"] == 5 and kf["fold"] == 2 and kf["stratified"] and kf["fold_sizes"] == [40] * 5
    other = load_splits(make_cfg(tmp_path, kfold={"k": 5, "seed": 4}))
    assert not np.array_equal(other.folds, folds)


def test_kfold_fold_with_validation_file_is_refused(tmp_path, train):
    write_csv(tmp_path / "val.csv", labelled_rows({"a": 2}, prefix="v"))
    with pytest.raises(ConfigError, match="choose one validation source"):
        load_splits(make_cfg(tmp_path, validation_file=str(tmp_path / "val.csv"), kfold={"k": 3, "fold": 0}))


def test_leakage_between_files_is_reported(tmp_path, train):
    val = labelled_rows({"a": 3, "b": 3}, prefix="v") + [{"id": "dup", "text": "  sample a number 5 ", "label": "a"}]
    write_csv(tmp_path / "val.csv", val)
    write_csv(tmp_path / "test.csv", [{"id": "t1", "text": "sample c number 1"}, {"id": "t2", "text": "new"}])
    cfg = make_cfg(tmp_path, validation_file=str(tmp_path / "val.csv"), test_file=str(tmp_path / "test.csv"))
    splits = load_splits(cfg)
    leaks = [w for w in splits.warnings if w.startswith("leakage")]
    assert len(leaks) == 2
    assert "1 validation row(s) have the same input as a train row" in leaks[0] and "val.csv:8" in leaks[0]
    assert "1 test row(s) have the same input as a train row" in leaks[1] and "test.csv:2" in leaks[1]
    assert splits.test is not None and "label" not in splits.test.columns


def test_unseen_validation_label_is_an_error_test_label_a_warning(tmp_path, train):
    write_csv(tmp_path / "val.csv", labelled_rows({"a": 2, "zzz": 1}, prefix="v"))
    with pytest.raises(
        DataError, match=r"val\.csv:4:label: label 'zzz' at line 4 of the file never occurs in the train"
    ):
        load_splits(make_cfg(tmp_path, validation_file=str(tmp_path / "val.csv")))
    write_csv(tmp_path / "test.csv", labelled_rows({"a": 2, "zzz": 1}, prefix="t"))
    splits = load_splits(make_cfg(tmp_path, test_file=str(tmp_path / "test.csv")))
    assert any("1 test row(s) have labels never seen in train, e.g. 'zzz' at line 4" in w for w in splits.warnings)


def test_manifest_and_save(tmp_path, train):
    splits = load_splits(make_cfg(tmp_path))
    m = splits.manifest
    assert m["files"]["train"]["sha256"] == sha256_file(train) and m["files"]["train"]["rows"] == 200
    assert m["rows"] == {"train": 180, "validation": 20, "test": 0}
    assert m["label_names"] == ["a", "b", "c"]
    assert sum(m["label_counts"]["train"].values()) == 180
    assert m["label_counts"]["validation"] == {"a": 10, "b": 6, "c": 4}
    out = save_manifest(splits, tmp_path / "run" / "data_manifest.json")
    import json

    assert json.loads(out.read_text())["label_names"] == ["a", "b", "c"]


def test_load_splits_writes_nothing(tmp_path, train):
    before = sorted(p.name for p in tmp_path.rglob("*"))
    load_splits(make_cfg(tmp_path, kfold={"k": 3}))
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_summarization_roles(tmp_path):
    rows = [{"id": str(i), "dialogue": f"#P1#: hi {i}", "summary": f"greeting {i}"} for i in range(10)]
    write_csv(tmp_path / "train.csv", rows)
    write_csv(tmp_path / "test.csv", [{"id": "t", "dialogue": "#P1#: bye"}])
    task = {"type": "summarization"}
    splits = load_splits(make_cfg(tmp_path, task=task, test_file=str(tmp_path / "test.csv")))
    assert splits.label_names is None and len(splits.test) == 1 and splits.manifest["split"]["stratified"] is False
    rows[3]["summary"] = " "
    write_csv(tmp_path / "train.csv", rows)
    with pytest.raises(DataError, match=r"train\.csv:5:summary: summary is whitespace-only"):
        load_splits(make_cfg(tmp_path, task=task))
    with pytest.raises(DataError, match=r"train\.csv:1:refs: required column 'refs' is missing"):
        load_splits(make_cfg(tmp_path, task={**task, "extra_target_columns": ["refs"]}))


def test_sft_label_set_is_label_names(tmp_path):
    rows = [{"instruction": f"classify {i}", "response": "yes" if i % 2 else "no"} for i in range(6)]
    write_csv(tmp_path / "train.csv", rows)
    splits = load_splits(make_cfg(tmp_path, task={"type": "sft", "label_set": ["no", "yes"]}))
    assert splits.label_names == ["no", "yes"]
