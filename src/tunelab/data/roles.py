"""Which columns of a data file play which role, per task and split, from `cfg.task`.

The only place that maps task config fields to column roles, so validation, splitting and
leakage checks agree on what "the text" and "the label" are.
"""

from __future__ import annotations

from dataclasses import dataclass

SPLITS = ("train", "validation", "test")


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


def roles_for(task, split: str) -> Roles:
    """Roles for `split` ("train", "validation", "test", "predict") of a `cfg.task` section.

    The test/predict files need no label or target column.
    """
    labelled = split in ("train", "validation")
    if task.type == "classification":
        inputs = (task.text_column,) + ((task.text_pair_column,) if task.text_pair_column else ())
        return Roles(text=inputs, label=task.label_column if labelled else None, id=task.id_column, keys=inputs)
    if task.type == "summarization":
        targets = (task.target_column, *task.extra_target_columns) if labelled else ()
        return Roles(text=(task.input_column, *targets), id=task.id_column, keys=(task.input_column,))
    if task.type == "sft":
        targets = (task.response_column,) if labelled else ()
        return Roles(text=(task.instruction_column, *targets), id=task.id_column, keys=(task.instruction_column,))
    raise AssertionError(f"unknown task type {task.type}")  # pydantic rejects this earlier


def target_columns(task) -> tuple[str, ...]:
    """Columns that hold the answer (absent from test files): label or target(s)."""
    if task.type == "classification":
        return (task.label_column,)
    if task.type == "summarization":
        return (task.target_column, *task.extra_target_columns)
    return (task.response_column,)
