"""`tunelab fix-text FILE -o OUT`: a repaired copy of a data file whose text is mojibake.

Detection and repair are data/mojibake.py (ftfy plus cp949); this module applies them cell by
cell and writes the copy: never over the input, always atomically (a crash leaves no half file),
in the input's own format. CSV/TSV are written back with the csv module's minimal quoting and
the input's line ending; JSONL lines without a repair are copied byte for byte, repaired ones are
dumped again (UTF-8, not \\u escapes). Cells whose bytes were lost (the code page left them
undefined and the tool that saved the file dropped or replaced them) get the best repair there
is and are listed, so the caller can exit non-zero: no tool can bring those bytes back.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunelab.data import mojibake
from tunelab.data.readers import decode_text, detect_format, read_table
from tunelab.errors import DataError
from tunelab.io import atomic_path


@dataclass(frozen=True)
class Change:
    row: int  # line of the file (CSV/TSV/JSONL) or data row (Parquet), as read_table numbers it
    column: str
    codepage: str
    before: str
    after: str
    complete: bool


@dataclass
class FixReport:
    path: Path
    output: Path
    rows: int
    row_kind: str  # "line" or "data row"
    changes: list[Change] = field(default_factory=list)

    @property
    def incomplete(self) -> list[Change]:
        return [c for c in self.changes if not c.complete]


def fix_file(path: str | Path, output: str | Path, columns: list[str] | None = None) -> FixReport:
    """Repair mojibake in `columns` (default: every column) of `path`; write the copy to `output`."""
    src, out = Path(path), Path(output)
    if out.exists() and out.resolve() == src.resolve():
        raise DataError(f"{out}: same file as the input", hint="fix-text never writes in place: pass -o NEW_FILE")
    kind = detect_format(src)
    frame = read_table(src, kind)
    chosen = _columns(frame, src, columns)
    report = FixReport(src, out, len(frame), "line" if frame.attrs.get("row_kind") == "line" else "data row")
    fixed = frame.copy()
    for column in chosen:
        for row, value in frame[column].items():
            found = mojibake.repair(value) if isinstance(value, str) else None
            if found is None:
                continue
            report.changes.append(Change(int(row), column, found.codepage, value, found.repaired, found.complete))
            fixed.at[row, column] = found.repaired
    _write(src, out, kind, frame, fixed, {c.row for c in report.changes})
    return report


def _columns(frame: Any, path: Path, columns: list[str] | None) -> list[str]:
    names = [str(c) for c in frame.columns]
    if not columns:
        return names
    unknown = [c for c in columns if c not in names]
    if unknown:
        raise DataError(f"{path}: no column {unknown[0]!r}", hint=f"--column takes one of: {', '.join(names)}")
    return list(dict.fromkeys(columns))


def _write(src: Path, out: Path, kind: str, frame: Any, fixed: Any, changed: set[int]) -> None:
    with atomic_path(out, suffix=out.suffix) as tmp:
        if kind == "parquet":
            fixed.to_parquet(tmp, index=False)
        elif kind == "jsonl":
            tmp.write_text(_jsonl(src, fixed, changed), encoding="utf-8", newline="")
        else:
            tmp.write_text(_delimited(src, fixed, "\t" if kind == "tsv" else ","), encoding="utf-8", newline="")


def _delimited(src: Path, fixed: Any, delimiter: str) -> str:
    text = decode_text(src, src.read_bytes(), "utf-8")
    ending = "\r\n" if "\r\n" in text[: text.find("\n") + 1 or len(text)] else "\n"
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=ending)
    writer.writerow([str(c) for c in fixed.columns])
    for record in fixed.itertuples(index=False):
        writer.writerow(["" if v is None else v for v in record])
    return buffer.getvalue()


def _jsonl(src: Path, fixed: Any, changed: set[int]) -> str:
    lines = decode_text(src, src.read_bytes(), "utf-8").split("\n")
    for number in changed:
        line = lines[number - 1]
        obj = json.loads(line)
        for column in fixed.columns:
            value = fixed.at[number, column]
            if isinstance(obj.get(column), str) and value is not None:
                obj[column] = value
        lines[number - 1] = json.dumps(obj, ensure_ascii=False) + ("\r" if line.endswith("\r") else "")
    return "\n".join(lines)


def print_report(report: FixReport, limit: int = 50) -> int:
    """The changed cells as a before/after table, then the rows not fully repaired; returns the
    exit code (1 when any cell could not be fully repaired)."""
    from tunelab import ui

    out = ui.console()
    if not report.changes:
        out.print(f"{report.path}: no mojibake in {report.rows} rows; wrote a copy to {report.output}", markup=False)
        return 0
    rows = [
        [c.row, c.column, c.codepage, c.before, c.after + ("" if c.complete else " (bytes lost)")]
        for c in report.changes[:limit]
    ]
    styles = [None if c.complete else "yellow" for c in report.changes[:limit]]
    ui.print_rows(
        f"{report.path}: repaired cells",
        [report.row_kind, "column", "code page", "before", "after"],
        rows,
        console=out,
        styles=styles,
    )
    if len(report.changes) > limit:
        out.print(f"... and {len(report.changes) - limit} more")
    repaired = len({c.row for c in report.changes})
    out.print(
        f"wrote {report.output}: {repaired} of {report.rows} rows repaired ({len(report.changes)} cells)", markup=False
    )
    lost = sorted({c.row for c in report.incomplete})
    if not lost:
        return 0
    shown = ", ".join(map(str, lost[:limit])) + (" ..." if len(lost) > limit else "")
    from rich.markup import escape

    ui.err().print(
        f"[bold red]not fully repairable:[/] {len(lost)} row(s) lost bytes when the file was saved "
        f"({report.row_kind}{'s' if len(lost) > 1 else ''} {escape(shown)}); re-export them from the original source"
    )
    return 1
