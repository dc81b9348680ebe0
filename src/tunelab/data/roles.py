"""Which columns of a data file play which role, per task and split, from `cfg.task`.

The only place that maps task config fields to column roles, so validation, splitting and
leakage checks agree on what "the text" and "the label" are.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Roles:
    """Column roles for one file.

    text: must exist; every value non-null and not blank (inputs, and targets that are text).
    label: a class label: must exist; every value non-null (NaN-like strings count as null).
    id: optional column; when present every value is non-null and unique.
    keys: the columns whose content identifies a sample (for duplicate/leakage checks).
    """

    text: tuple[str, ...]
    label: str | None = None
    id: str | None = None
    keys: tuple[str, ...] = ()
    # (column, the config key that names it): an error about a missing column names the key to fix.
    sources: tuple[tuple[str, str], ...] = ()

    def source(self, column: str) -> str | None:
        return next((key for col, key in self.sources if col == column), None)


def roles_for(task, split: str) -> Roles:
    """Roles for `split` ("train", "validation", "test", "predict") of a `cfg.task` section.

    The test/predict files need no label or target column.
    """
    labelled = split in ("train", "validation")
    sources = _sources(task)
    if task.type == "classification":
        inputs = (task.text_column,) + ((task.text_pair_column,) if task.text_pair_column else ())
        label = task.label_column if labelled else None
        return Roles(text=inputs, label=label, id=task.id_column, keys=inputs, sources=sources)
    if task.type == "summarization":
        targets = (task.target_column, *task.extra_target_columns) if labelled else ()
        return Roles(text=(task.input_column, *targets), id=task.id_column, keys=(task.input_column,), sources=sources)
    if task.type == "sft":
        targets = (task.response_column,) if labelled else ()
        text = (task.instruction_column, *targets)
        return Roles(text=text, id=task.id_column, keys=(task.instruction_column,), sources=sources)
    raise AssertionError(f"unknown task type {task.type}")  # pydantic rejects this earlier


def _sources(task) -> tuple[tuple[str, str], ...]:
    fields = {
        "classification": ("text_column", "text_pair_column", "label_column", "id_column"),
        "summarization": ("input_column", "target_column", "id_column"),
        "sft": ("instruction_column", "response_column", "id_column"),
    }[task.type]
    out = [(getattr(task, f), f"task.{f}") for f in fields if getattr(task, f, None)]
    out += [(col, "task.extra_target_columns") for col in getattr(task, "extra_target_columns", None) or ()]
    return tuple(out)


def target_columns(task) -> tuple[str, ...]:
    """Columns that hold the answer (absent from test files): label or target(s)."""
    if task.type == "classification":
        return (task.label_column,)
    if task.type == "summarization":
        return (task.target_column, *task.extra_target_columns)
    return (task.response_column,)
