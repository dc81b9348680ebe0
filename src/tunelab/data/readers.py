"""Read one data file (CSV, TSV, JSONL, Parquet) into a DataFrame of strings, or fail clearly.

Every value is read as a string (labels too, so `1` and `"1"` are the same class); missing
values are None. The returned frame's index is where each row sits in the file, so later
errors can point at it: the 1-based *line* of the file for CSV/TSV/JSONL (the CSV header is
line 1, so the first data row is line 2) and the 1-based *data row* for Parquet.
`frame.attrs["row_kind"]` says which ("line" or "row").

We parse CSV with the stdlib `csv` module instead of `pandas.read_csv` because we need what
pandas hides: the line each record starts on, records with the wrong number of fields (pandas
silently pads short rows with NaN), and a bound on field size so an unterminated quote fails
fast instead of swallowing the rest of the file.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

from tunelab.errors import DataError

FORMATS = ("csv", "tsv", "jsonl", "parquet")
_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
# One field above this is almost surely an unterminated quote, not real text.
MAX_FIELD_CHARS = 16 * 1024 * 1024
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def read_table(path: str | Path, fmt: str = "auto", encoding: str = "utf-8") -> pd.DataFrame:
    """Read `path` into a DataFrame of strings indexed by file position (see module doc)."""
    p = Path(path)
    kind = detect_format(p, fmt)
    if not p.exists():
        raise DataError(
            f"{p}: data file not found",
            hint="check the path in data.*_file (relative paths start at the working directory)",
        )
    if not p.is_file():
        raise DataError(f"{p}: not a file", hint="data.*_file must name a file, not a directory")
    if p.stat().st_size == 0:
        raise DataError(f"{p}: file is empty (0 bytes)", hint="the file was probably truncated or never written")
    if kind == "parquet":
        return _read_parquet(p)
    text = decode_text(p, p.read_bytes(), encoding)
    frame = _read_csv(p, text, "\t" if kind == "tsv" else ",") if kind in ("csv", "tsv") else _read_jsonl(p, text)
    if frame.empty:
        raise DataError(f"{p}: no data rows", hint="the file has a header (or blank lines) but no records")
    return frame


def detect_format(path: Path, fmt: str = "auto") -> str:
    if fmt != "auto":
        if fmt not in FORMATS:
            raise DataError(f"{path}: unknown format {fmt!r}", hint=f"use one of {', '.join(FORMATS)} or auto")
        return fmt
    suffixes = [s.lower() for s in path.suffixes]
    for suffix in reversed(suffixes):
        if suffix in _SUFFIXES:
            return _SUFFIXES[suffix]
    raise DataError(
        f"{path}: cannot tell the format from the suffix {path.suffix!r}",
        hint="use .csv, .tsv, .jsonl or .parquet, or set data.format",
    )


# ------------------------------------------------------------------------------- text decoding
def decode_text(path: Path, raw: bytes, encoding: str) -> str:
    """Bytes -> text with the declared encoding; binary files, bad bytes and stray BOMs fail."""
    nul = raw.find(b"\x00")
    if nul >= 0 and not encoding.lower().replace("-", "").startswith("utf16"):
        line = raw.count(b"\n", 0, nul) + 1
        raise DataError(
            f"{path}:{line}: NUL byte at byte offset {nul}: this is a binary file, not text",
            hint="is it a Parquet/Excel/zip file with a .csv/.jsonl name, or UTF-16 text? convert it to UTF-8 text",
        )
    is_utf8 = encoding.lower().replace("-", "").replace("_", "") in ("utf8", "utf8sig")
    if is_utf8 and raw.startswith(_UTF16_BOMS):
        raise DataError(
            f"{path}:1: file starts with a UTF-16 byte-order mark but data.encoding is {encoding}",
            hint="save the file as UTF-8, or set data.encoding: utf-16",
        )
    if is_utf8 and raw.startswith(_UTF8_BOM):
        raw = raw[len(_UTF8_BOM) :]  # a leading UTF-8 BOM is harmless: strip it so the first column name is right
        encoding = "utf-8"
    try:
        text = raw.decode(encoding)
    except LookupError:
        raise DataError(
            f"{path}: unknown encoding {encoding!r}", hint="set data.encoding to a Python codec name, e.g. utf-8, cp949"
        ) from None
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        bad = raw[exc.start : exc.start + 4].hex(" ")
        raise DataError(
            f"{path}:{line}: byte offset {exc.start} (column {col} of the line): bytes {bad} are not valid {encoding}",
            hint=_encoding_hint(encoding),
        ) from None
    stray = text.find("\ufeff")
    if stray >= 0:
        line = text.count("\n", 0, stray) + 1
        raise DataError(
            f"{path}:{line}: byte-order mark (U+FEFF) inside the file, not at its start",
            hint="two files were probably concatenated; remove the second header/BOM (or re-export the file)",
        )
    return text


def _encoding_hint(encoding: str) -> str:
    if encoding.lower().replace("-", "") in ("utf8", "utf8sig"):
        return (
            "the file is not UTF-8 (Korean Excel exports are often cp949/euc-kr): re-save it as UTF-8, "
            "or set data.encoding: cp949"
        )
    return f"check data.encoding ({encoding}); re-save the file in that encoding or as UTF-8"


# ------------------------------------------------------------------------------------ CSV / TSV
def _read_csv(path: Path, text: str, delimiter: str) -> pd.DataFrame:
    csv.field_size_limit(MAX_FIELD_CHARS)
    stream = io.StringIO(text, newline="")
    reader = csv.reader(stream, delimiter=delimiter, strict=False)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise _csv_error(path, text, reader.line_num, exc) from None
    if header is None or not any(h.strip() for h in header):
        raise DataError(f"{path}:1: no header row", hint="the first line must name the columns, e.g. id,text,label")
    # Spreadsheet exports often end rows with a stray delimiter: name such columns, don't fail.
    header = [h.strip() or f"unnamed_{i}" for i, h in enumerate(header, start=1)]
    _check_header(path, header)
    rows: list[list[str]] = []
    lines: list[int] = []
    start = reader.line_num + 1
    try:
        for record in reader:
            if not record or (len(record) == 1 and not record[0].strip() and len(header) > 1):
                start = reader.line_num + 1  # blank line: skipped, but line numbers keep counting
                continue
            if len(record) != len(header):
                raise _field_count_error(path, text, start, header, record)
            rows.append(record)
            lines.append(start)
            start = reader.line_num + 1
    except csv.Error as exc:
        raise _csv_error(path, text, start, exc) from None
    frame = pd.DataFrame(rows, columns=header, dtype=object)
    frame.index = pd.Index(lines, name="line")
    frame.attrs["row_kind"] = "line"
    return frame.where(frame.notna(), None)


def _check_header(path: Path, header: list[str]) -> None:
    seen: set[str] = set()
    for i, name in enumerate(header, start=1):
        if name in seen:
            raise DataError(
                f"{path}:1:{name}: column name {name!r} appears twice in the header (field {i})",
                hint="rename one of the columns",
            )
        seen.add(name)


def _field_count_error(path: Path, text: str, line: int, header: list[str], record: list[str]) -> DataError:
    mixed = line_ending_mix(text)
    why = f"; the file mixes line endings ({mixed})" if mixed else ""
    if any("\n" in field or "\r" in field for field in record):
        return DataError(
            f"{path}:{line}: expected {len(header)} fields ({', '.join(header)}), found {len(record)}; "
            f"a quoted field runs over several lines{why}",
            hint='a quote opened on this line is probably never closed (or a " inside text is not doubled as "")',
        )
    hint = (
        (
            "a stray carriage return (\\r) or mixed CRLF/LF line endings split a record: convert line endings "
            "(e.g. dos2unix) and quote fields that contain newlines"
        )
        if mixed
        else ("quote fields that contain the delimiter or newlines; check for a missing or extra delimiter")
    )
    return DataError(
        f"{path}:{line}: expected {len(header)} fields ({', '.join(header)}), found {len(record)}{why}", hint=hint
    )


def _csv_error(path: Path, text: str, line: int, exc: csv.Error) -> DataError:
    msg = str(exc)
    if "field larger than field limit" in msg:
        return DataError(
            f"{path}:{line}: a field is longer than {MAX_FIELD_CHARS} characters",
            hint="an opening quote is probably never closed; fix the quoting from this line on",
        )
    mixed = line_ending_mix(text)
    extra = f"; the file mixes line endings ({mixed})" if mixed else ""
    return DataError(
        f"{path}:{line}: cannot parse CSV: {msg}{extra}",
        hint="fix the quoting on this line; convert line endings to one style (e.g. dos2unix)",
    )


def line_ending_mix(text: str) -> str | None:
    """Describe mixed line endings outside quoted fields ("CRLF and LF (line 7)"), or None.

    Newlines inside quoted cells are ignored: Excel writes LF inside cells and CRLF between
    rows, and that is fine. Only called on the error path, so a plain scan is fast enough.
    """
    seen: dict[str, int] = {}
    line, quoted = 1, False
    for match in _BREAK_OR_QUOTE.finditer(text):
        token = match.group()
        if token == '"':
            quoted = not quoted  # an escaped "" toggles twice
            continue
        if not quoted:
            kind = {"\r\n": "CRLF", "\n": "LF", "\r": "CR"}[token]
            seen.setdefault(kind, line)
            if len(seen) > 1:
                first, second = sorted(seen, key=seen.get)[:2]
                return f"{first} and {second} (line {seen[second]})"
        line += 1
    return None


_BREAK_OR_QUOTE = re.compile(r'\r\n|\r|\n|"')


# ----------------------------------------------------------------------------------------- JSONL
def _read_jsonl(path: Path, text: str) -> pd.DataFrame:
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    structured: dict[str, tuple[int, str]] = {}  # column -> (first line, "object"/"array")
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path}:{number}: malformed JSON at column {exc.colno}: {exc.msg}",
                hint="each line must be one complete JSON object; was the file cut off or pretty-printed?",
            ) from None
        if not isinstance(obj, dict):
            raise DataError(
                f"{path}:{number}: expected a JSON object per line, got {type(obj).__name__}",
                hint='write one object per line, e.g. {"text": "...", "label": "..."}',
            )
        records.append({str(k): to_text(v) for k, v in obj.items()})
        lines.append(number)
        for k, v in obj.items():  # remembered so validation can refuse an object where text belongs
            if isinstance(v, (dict, list)) and str(k) not in structured:
                structured[str(k)] = (number, "object" if isinstance(v, dict) else "array")
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    frame = frame.astype(object)
    frame.index = pd.Index(lines, name="line")
    frame.attrs["row_kind"] = "line"
    frame.attrs["structured"] = structured
    return frame.where(frame.notna(), None)


def to_text(value: Any) -> str | None:
    """One cell as text: None/NaN -> None, 1.0 -> "1" (a float column with NaN holes), lists -> JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False)
    if hasattr(value, "item"):  # numpy scalar
        return to_text(value.item())
    return str(value)


# ----------------------------------------------------------------------------- in-memory frames
def from_pandas(frame: pd.DataFrame, source: str = "<DataFrame>") -> pd.DataFrame:
    """A caller's DataFrame (Python API, Kedro) as if read from a file: strings, None, rows 1..n.

    The same value rules as the Parquet reader, so a frame and the file it came from validate,
    split and tokenize identically.
    """
    if len(set(map(str, frame.columns))) != len(frame.columns):
        raise DataError(f"{source}: duplicate column names", hint="rename the columns")
    columns = {str(name): [_cell(v) for v in frame[name].tolist()] for name in frame.columns}
    out = pd.DataFrame(columns, dtype=object)
    if out.empty:
        raise DataError(f"{source}: no data rows", hint="pass a frame with at least one row")
    out.index = pd.RangeIndex(1, len(out) + 1, name="row")
    out.attrs["row_kind"] = "row"
    return out.where(out.notna(), None)


def _cell(value: Any) -> str | None:
    # pandas' own missing markers (pd.NA, NaT) are not floats: to_text alone would write "<NA>".
    if not isinstance(value, (list, tuple, dict)) and pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    return to_text(value)


# --------------------------------------------------------------------------------------- Parquet
def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(
            f"{path}: not a readable Parquet file ({str(exc).splitlines()[0][:200]})",
            hint="the file is truncated or not Parquet; re-export it",
        ) from None
    columns = {name: [to_text(v) for v in table.column(name).to_pylist()] for name in table.column_names}
    if len(set(columns)) != len(table.column_names):
        raise DataError(f"{path}: duplicate column names in the Parquet schema", hint="rename the columns")
    frame = pd.DataFrame(columns, dtype=object)
    if frame.empty:
        raise DataError(f"{path}: no data rows", hint="the Parquet file has a schema but no rows")
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="row")
    frame.attrs["row_kind"] = "row"
    return frame.where(frame.notna(), None)
