"""Helpers for the data tests: config builder, CSV writer and a tiny fake Task with a call counter."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from tunelab.config.loader import validate_config


def make_cfg(tmp: Path, task: dict | None = None, **data: Any):
    """A validated Config with data paths/cache under `tmp` (train_file defaults to tmp/train.csv)."""
    data.setdefault("train_file", str(tmp / "train.csv"))
    data.setdefault("cache_dir", str(tmp / "cache"))
    return validate_config(
        {
            "task": task or {"type": "classification"},
            "data": data,
            "model": {"name_or_path": str(tmp / "model")},
            "tracking": "none",
        }
    )


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def labelled_rows(counts: dict[str, int], prefix: str = "sample") -> list[dict[str, str]]:
    rows = []
    for label, n in counts.items():
        rows += [{"id": f"{label}-{i}", "text": f"{prefix} {label} number {i}", "label": label} for i in range(n)]
    return rows


class FakeTask:
    """Follows the tasks.base.Task tokenization protocol; counts tokenize calls (cache hit = 0)."""

    name = "classification"

    def __init__(
        self,
        cfg,
        label_names: list[str] | None = None,
        *,
        preprocessing_version: str = "1",
        extra_fingerprint: str = "",
        fail_after: int | None = None,
    ):
        self.cfg = cfg
        self.label_names = label_names
        self.preprocessing_version = preprocessing_version
        self.extra_fingerprint = extra_fingerprint
        self.fail_after = fail_after
        self.calls = 0

    def cache_fingerprint(self) -> dict[str, Any]:
        return {"template": self.cfg.task.template, "labels": self.label_names, "extra": self.extra_fingerprint}

    def tokenize(self, batch: dict[str, list[Any]], tokenizer) -> dict[str, list[Any]]:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("simulated crash mid-tokenization")
        column = self.cfg.task.text_column
        texts = [self.cfg.task.template.format(text=t) for t in batch[column]]
        enc = tokenizer(texts, truncation=True, max_length=self.cfg.data.max_length)
        out = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
        if self.label_names and self.cfg.task.label_column in batch:
            out["labels"] = [self.label_names.index(v) for v in batch[self.cfg.task.label_column]]
        return out
