"""Which columns of a data file play which role, per task and split, from `cfg.task`.

The only place that maps task config fields to column roles, so validation, splitting and
leakage checks agree on what "the text" and "the label" are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tunelab.config.schema import TaskSection


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


def roles_for(task: TaskSection, split: str) -> Roles:
    """Roles for `split` ("train", "validation", "test", "predict") of a `cfg.task` section.

    The test/predict files need no label or target column. A class label gets the `label` role;
    text targets are text that must not be blank.
    """
    labelled = split in ("train", "validation")
    inputs = task.input_columns()
    label = task.label_column_role()
    text_targets = task.target_columns() if labelled and label is None else ()
    return Roles(
        text=(*inputs, *text_targets),
        label=label if labelled else None,
        id=task.id_column,
        keys=inputs,
        sources=task.column_sources(),
    )


def target_columns(task: TaskSection) -> tuple[str, ...]:
    """Columns that hold the answer (absent from test files): label or target(s)."""
    return task.target_columns()
