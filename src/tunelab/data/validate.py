"""Validate one data frame against its column roles: errors name path:row:column, warnings are kept.

Rows are named by the frame's index, which `read_table` sets to the position in the file: the
line number for CSV/TSV/JSONL (the CSV header is line 1) and the data row for Parquet. Errors
raise DataError at the first problem; softer findings (single-example labels, imbalance,
conflicting labels, a little mojibake under the allowed share) are returned as warning strings.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from tunelab.data import mojibake
from tunelab.data.roles import Roles
from tunelab.errors import DataError

# Strings that mean "no label" in exported spreadsheets and dataframes (compared after strip()).
NULL_LIKE = frozenset({"", "nan", "NaN", "NAN", "null", "NULL", "Null", "None", "none", "N/A", "n/a", "#N/A"})
_MAX_EXAMPLES = 3


def validate_frame(
    df: pd.DataFrame,
    path: str | Path,
    roles: Roles,
    *,
    imbalance_warn_ratio: float = 20.0,
    mojibake_max_share: float = 0.0,
) -> list[str]:
    """Raise DataError on the first invalid cell; return warnings (strings naming path and rows)."""
    path = str(path)
    check_columns(df, path, roles)
    for column in roles.text:
        _check_text(df, path, column)
    if roles.label:
        _check_labels(df, path, roles.label)
    if roles.id and roles.id in df.columns:
        _check_ids(df, path, roles.id)
    warnings = _check_mojibake(df, path, roles, mojibake_max_share)
    if roles.label:
        warnings += label_warnings(df, path, roles, imbalance_warn_ratio)
    return warnings


def where(df: pd.DataFrame, path: str, row: object, column: str) -> str:
    """`path:row:column` as used in every data error."""
    return f"{path}:{row}:{column}"


def row_words(df: pd.DataFrame, row: object) -> str:
    """How the user finds `row`: 'line 7 of the file' or 'data row 7'."""
    return f"line {row} of the file" if df.attrs.get("row_kind") == "line" else f"data row {row}"


def rows_words(df: pd.DataFrame, rows: list) -> str:
    """'lines 3, 102' or 'data rows 3, 102'."""
    kind = "line" if df.attrs.get("row_kind") == "line" else "data row"
    return f"{kind}{'s' if len(rows) > 1 else ''} {', '.join(str(r) for r in rows)}"


def check_columns(df: pd.DataFrame, path: str, roles: Roles) -> None:
    needed = [*roles.text, *([roles.label] if roles.label else [])]
    have = [str(c) for c in df.columns]
    for column in needed:
        if column not in df.columns:
            close = _closest(column, have)
            hint = f"did you mean {close!r}? " if close else ""
            key = roles.source(column)
            fix = f"set {key} to the column that holds it" if key else "map your columns in the task section"
            raise DataError(
                f"{path}:1:{column}: required column {column!r} is missing "
                f"({key + ' names it; ' if key else ''}columns: {', '.join(have)})",
                hint=f"{hint}{fix}",
            )


def _closest(name: str, options: list[str]) -> str | None:
    import difflib

    lowered = {o.lower(): o for o in options}
    if name.lower() in lowered:
        return lowered[name.lower()]
    found = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    return found[0] if found else None


def _check_text(df: pd.DataFrame, path: str, column: str) -> None:
    nested = df.attrs.get("structured", {}).get(column)  # a JSON object/array in a JSONL text field
    if nested:
        line, kind = nested
        raise DataError(
            f"{where(df, path, line, column)}: {column} is a JSON {kind}, not text, at {row_words(df, line)}",
            hint=f"{column} must be a string in every row; "
            "flatten that field or map another column in the task section",
        )
    values = df[column]
    missing = values.isna()
    if missing.any():
        row = values.index[missing.to_numpy().argmax()]
        raise DataError(
            f"{where(df, path, row, column)}: {column} is missing (null) at {row_words(df, row)}",
            hint=f"every row needs a non-empty {column}; drop or fill the row",
        )
    blank = values.str.strip() == ""
    if blank.any():
        row = values.index[blank.to_numpy().argmax()]
        what = "empty" if values[row] == "" else "whitespace-only"
        raise DataError(
            f"{where(df, path, row, column)}: {column} is {what} at {row_words(df, row)}",
            hint=f"every row needs a non-empty {column}; drop or fill the row",
        )


def null_labels(values: pd.Series) -> pd.Series:
    """True where a label is missing: None/NaN or a NaN-like string ("nan", "null", "None", "")."""
    return values.isna() | values.map(lambda v: isinstance(v, str) and v.strip() in NULL_LIKE)


def _check_labels(df: pd.DataFrame, path: str, column: str) -> None:
    bad = null_labels(df[column])
    if bad.any():
        row = df.index[bad.to_numpy().argmax()]
        value = df.at[row, column]
        if not isinstance(value, str):
            shown = "missing"
        else:
            shown = "empty" if not value.strip() else f"null-like ({value!r})"
        raise DataError(
            f"{where(df, path, row, column)}: label is {shown} at {row_words(df, row)}",
            hint="every training/validation row needs a label; drop unlabelled rows or move them to the test file",
        )


def _check_ids(df: pd.DataFrame, path: str, column: str) -> None:
    values = df[column]
    if values.isna().any():
        row = values.index[values.isna().to_numpy().argmax()]
        raise DataError(
            f"{where(df, path, row, column)}: id is missing at {row_words(df, row)}",
            hint="ids must be present and unique (or set task.id_column: null)",
        )
    dup = values.duplicated(keep="first")
    if dup.any():
        row = values.index[dup.to_numpy().argmax()]
        first = values.index[(values == values[row]).to_numpy().argmax()]
        raise DataError(
            f"{where(df, path, row, column)}: duplicate id {values[row]!r} at {row_words(df, row)} "
            f"(first seen at {row_words(df, first)})",
            hint="ids must be unique; deduplicate the file (or set task.id_column: null)",
        )


def _check_mojibake(df: pd.DataFrame, path: str, roles: Roles, max_share: float) -> list[str]:
    columns = [*roles.text, *([roles.label] if roles.label else [])]
    found = {column: _mojibake_candidates(df[column]) for column in columns}
    checked = np.zeros(len(df), dtype=bool)
    for text, _cells in found.values():
        checked |= text
    # scan() sees only the cells that can hold mojibake, in the (column, row) order it would
    # have met them; rows_checked still counts every row with a text cell.
    cells = ((row, column, value) for column in columns for row, value in found[column][1])
    report = mojibake.scan(cells, rows_checked=int(df.index[checked].nunique()))
    if not report.rows_affected:
        return []
    first = report.examples[0]
    summary = (
        f"{where(df, path, first.row, first.column)}: mojibake in {report.rows_affected} of "
        f"{report.rows_checked} rows ({report.share:.1%}); first at {row_words(df, first.row)}: "
        f"{mojibake.describe(first)}"
    )
    if report.share > max_share:
        raise DataError(
            summary,
            hint=f"`tunelab fix-text {path} -o FIXED` writes a repaired copy (or re-export the "
            "original data as UTF-8: the file was opened with the wrong code page and saved); "
            f"data.mojibake_max_share={max_share} allows a small share",
        )
    return [summary]


def _mojibake_candidates(values: pd.Series) -> tuple[np.ndarray, Iterable[tuple[object, str]]]:
    """(which cells are str, the (row, value) cells that may hold mojibake) for one column."""
    import pyarrow as pa

    try:
        array = pa.array(values, from_pandas=True)
    except (TypeError, ValueError, pa.ArrowException):
        array = None
    if array is None or not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        # Not a plain text column (mixed objects): every str cell, as scan() always took them.
        text = np.fromiter((isinstance(v, str) for v in values), dtype=bool, count=len(values))
        return text, ((row, v) for row, v, t in zip(values.index, values, text) if t)
    text = ~np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    suspect = mojibake.suspect_mask(array)
    return text, zip(values.index[suspect], values.to_numpy(dtype=object)[suspect])


def label_counts(labels: pd.Series) -> Counter:
    """Rows per label, in first-appearance order (as Counter(labels) would give, without a
    Python-level pass over every cell)."""
    codes, uniques = pd.factorize(labels, use_na_sentinel=False)
    sizes = np.bincount(codes, minlength=len(uniques))
    return Counter(dict(zip(list(uniques), sizes.tolist())))


def label_warnings(df: pd.DataFrame, path: str, roles: Roles, ratio: float) -> list[str]:
    """Single-example labels, heavy imbalance and identical inputs with different labels."""
    assert roles.label
    labels = df[roles.label]
    counts = label_counts(labels)
    warnings: list[str] = []
    singles = [label for label, n in counts.items() if n == 1]
    if singles:
        rows = [labels.index[(labels == s).to_numpy().argmax()] for s in singles[:_MAX_EXAMPLES]]
        shown = ", ".join(f"{s!r} ({rows_words(df, [r])})" for s, r in zip(singles, rows))
        warnings.append(
            f"{path}: column {roles.label}: {len(singles)} label(s) with a single example: {shown}"
            + (" ..." if len(singles) > _MAX_EXAMPLES else "")
        )
    if len(counts) > 1:
        (top, n_top), (low, n_low) = counts.most_common()[0], counts.most_common()[-1]
        if n_top / n_low >= ratio:
            warnings.append(
                f"{path}: column {roles.label}: heavy class imbalance: {top!r} has {n_top} rows, "
                f"{low!r} has {n_low} (ratio {n_top / n_low:.0f} >= data.imbalance_warn_ratio {ratio:g})"
            )
    warnings += _conflicts(df, path, roles)
    return warnings


def _conflicts(df: pd.DataFrame, path: str, roles: Roles) -> list[str]:
    keys = list(roles.keys or roles.text)
    clashing = _clashing_keys(df, keys, roles.label)
    if not clashing:
        return []
    key = tuple(df[column].iloc[clashing[0]] for column in keys)
    mask = pd.Series(True, index=df.index)
    for column, value in zip(keys, key):
        mask &= df[column] == value
    rows = df.index[mask.to_numpy()][:_MAX_EXAMPLES]
    labels = sorted({str(df.at[r, roles.label]) for r in rows})
    text = str(key[0])[:60]
    return [
        f"{path}: column {roles.label}: {len(clashing)} identical input(s) carry different labels; "
        f"e.g. {text!r} at {rows_words(df, list(rows))} has labels {labels}"
    ]


def _clashing_keys(df: pd.DataFrame, keys: list[str], label: str) -> list[int]:
    """For each input (the `keys` columns) with more than one distinct label: the position of
    the row where it first appears, in order of first appearance. What `groupby(keys, sort=False)[label]
    .nunique() > 1` finds (null keys and labels left out, as there), from integer codes."""
    codes = np.zeros(len(df), dtype=np.int64)
    valid = np.ones(len(df), dtype=bool)
    for column in keys:  # combine the columns' codes into one code per distinct key tuple
        part, uniques = pd.factorize(df[column])
        valid &= part >= 0
        codes = codes * (len(uniques) + 1) + part
        codes = pd.factorize(codes)[0]  # renumber so the product cannot overflow
    labels = pd.factorize(df[label])[0]
    labelled = valid & (labels >= 0)
    if not labelled.any():
        return []
    n_keys = int(codes[valid].max()) + 1
    # Distinct (key, label) pairs, then how many labels each key has.
    width = int(labels.max()) + 1
    pairs = np.unique(codes[labelled] * width + labels[labelled]) // width
    n_labels = np.bincount(pairs, minlength=n_keys)
    # A key's place in groupby(sort=False) order: its first row, labelled or not.
    keys_seen, first = np.unique(codes[valid], return_index=True)
    first_row = np.zeros(n_keys, dtype=np.int64)
    first_row[keys_seen] = np.flatnonzero(valid)[first]
    clashing = np.flatnonzero(n_labels > 1)
    return np.sort(first_row[clashing]).tolist()
