"""What a user sees: the one console pair, the one progress-bar style, plain output off a terminal.

Ground floor: imports nothing from tunelab, so every layer may use it. Nothing else in the package
constructs a `rich.console.Console` or a `rich.progress.Progress`; ask this module instead.

Why one place: a log file (CI, nohup, Slurm) must get plain lines without escape codes or boxes
wrapped at 80 columns, while a terminal gets colour, tables and live bars. Deciding that once here
keeps every command consistent.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import threading
from collections.abc import Iterator
from functools import cache
from typing import IO, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


def _make(file: IO[str] | None, stderr: bool) -> Console:
    # emoji=False: "train.csv:label:" must never turn into an emoji.
    # soft_wrap on a non-terminal: a log line with a long path stays one line.
    stream = file if file is not None else (sys.stderr if stderr else sys.stdout)
    if file is None and Console().is_jupyter:
        # A notebook is no log file: rich renders HTML at the notebook's width there, and live
        # progress bars through ipywidgets.
        return Console(stderr=stderr, highlight=False, emoji=False)
    terminal = bool(getattr(stream, "isatty", lambda: False)())
    return Console(
        file=file,
        stderr=stderr,
        highlight=False,
        emoji=False,
        soft_wrap=not terminal,
        width=None if terminal else 200,
    )


@cache
def _cached(stderr: bool) -> Console:
    return _make(None, stderr)


def console(*, stderr: bool = False, file: IO[str] | None = None) -> Console:
    """stdout console for results (tables, summaries); `stderr=True` for progress, warnings, errors."""
    if file is not None:
        return _make(file, stderr=False)
    # Not cached across stream swaps (pytest's capsys replaces sys.stdout): rebuild when it changed.
    cached = _cached(stderr)
    if cached.file is not (sys.stderr if stderr else sys.stdout):
        _cached.cache_clear()
        cached = _cached(stderr)
    return cached


def err() -> Console:
    """The stderr console (progress bars, warnings, error lines)."""
    return console(stderr=True)


def is_terminal(*, stderr: bool = True) -> bool:
    return console(stderr=stderr).is_terminal


def warn(message: str, *, prefix: str = "warning") -> None:
    """One yellow `warning:` line on stderr (markup in `message` is escaped by the caller if needed)."""
    err().print(f"[yellow]{prefix}:[/] {message}")


def info(message: str) -> None:
    err().print(message)


class RunRateColumn(ProgressColumn):
    """Average rate over the whole task so far (not the last window), with its unit; blank until known."""

    def __init__(self, unit: str = "it") -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        if not elapsed or not task.completed:
            return Text("", style="progress.data.speed")
        unit = task.fields.get("unit", self.unit)
        return Text(f"{task.completed / elapsed:,.1f} {unit}/s", style="progress.data.speed")


def progress(*extra: ProgressColumn | str, unit: str = "it", transient: bool = False, **kwargs: Any) -> Progress:
    """The one progress-bar layout: description, bar, n/total, run-average rate, elapsed, ETA (stderr).

    Off a terminal rich draws nothing live, so logs get no bar spam; callers print a summary line.
    Inside `quiet_progress()` (on that thread) the bar is disabled.
    """
    kwargs.setdefault("disable", bool(getattr(_local, "quiet", False)))
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RunRateColumn(unit),
        *extra,
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=err(),
        transient=transient,
        **kwargs,
    )


_local = threading.local()


@contextlib.contextmanager
def quiet_progress() -> Iterator[None]:
    """Progress bars made on this thread inside the block draw nothing.

    A server predicts one small batch per request: the batch-level bar that `tunelab predict`
    shows would print a finished bar line per request into the server's log. Thread-local, so
    other threads (and the rest of the process) keep their bars.
    """
    previous = getattr(_local, "quiet", False)
    _local.quiet = True
    try:
        yield
    finally:
        _local.quiet = previous


@contextlib.contextmanager
def quiet_datasets() -> Iterator[None]:
    """Mute datasets' own tqdm bars (map, save_to_disk) inside the block: we show one rich bar instead."""
    from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    was_disabled = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            enable_progress_bars()


@contextlib.contextmanager
def transformers_errors_only(active: bool = True) -> Iterator[None]:
    """transformers' logger at ERROR inside the block (when `active`), restored after: for loads whose
    report would be true for a moment and misleading (a fresh head replaced just after)."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    if active:
        hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def quiet_loggers(*names: str) -> None:
    """Raise these libraries' loggers to WARNING (their INFO lines are not for our users)."""
    for name in names:
        logging.getLogger(name).setLevel(logging.WARNING)


# ----------------------------------------------------------------------------- library noise
# What the libraries print that a user should not have to read: per-shard progress bars, the
# transformers load report (a table with raw ANSI codes even in a log file), "Token indices sequence
# length is longer..." (we report truncation ourselves), deprecations triggered inside the
# libraries. What matters is kept as one plain line of ours. Installed by the first code that
# loads a model or tokenizer (models/), so `tunelab validate` or `--help` never import transformers.
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_DROPPED = (
    "Token indices sequence length is longer than the specified maximum",
    "There were missing keys in the checkpoint model loaded",  # tied weights: training/best_load.py
)
_REPORT_WORDS = {
    "MISSING": "newly initialised (not in the checkpoint)",
    "UNEXPECTED": "in the checkpoint but unused by this model",
    "MISMATCH": "re-initialised (shape differs from the checkpoint)",
}
_quiet = False


def quiet_libraries() -> None:
    """Once per process: library progress bars off, their warnings as plain lines of ours."""
    global _quiet
    if _quiet:
        return
    _quiet = True
    import warnings

    warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)
    warnings.filterwarnings("ignore", message=r".*'pin_memory' argument is set as true but no accelerator")
    from huggingface_hub.utils import disable_progress_bars
    from transformers.utils import logging as hf_logging

    disable_progress_bars()
    hf_logging.disable_progress_bar()  # "Loading weights", "Writing model shards"
    hf_logging.get_logger()  # creates transformers' own handler, which we then replace
    hf_logging.disable_default_handler()
    hf_logging.add_handler(_LibraryLines(logging.WARNING))


def library_line(message: str) -> str | None:
    """The one line of ours for a library log message; None to drop it."""
    text = _ANSI.sub("", message).strip()
    if any(text.startswith(d) for d in _DROPPED):
        return None
    if "LOAD REPORT" in text.split("\n", 1)[0]:
        return _load_report_line(text)
    return " ".join(text.split()) if text else None


def _load_report_line(text: str) -> str | None:
    """`classifier.weight | MISSING |` rows of the report -> "newly initialised ...: classifier.weight, ..."."""
    by_status: dict[str, list[str]] = {}
    for row in text.splitlines():
        cells = [c.strip() for c in row.split("|")]
        if len(cells) >= 2 and cells[1] in _REPORT_WORDS:
            by_status.setdefault(cells[1], []).append(cells[0])
    parts = []
    for status, keys in by_status.items():
        shown = ", ".join(keys[:6]) + (f" (+{len(keys) - 6} more)" if len(keys) > 6 else "")
        parts.append(f"{_REPORT_WORDS[status]}: {shown}")
    return "weights " + "; ".join(parts) if parts else None


class _LibraryLines(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = library_line(record.getMessage())
        except Exception:  # a log call must never break training
            return
        if line is None:
            return
        if "LOAD REPORT" in record.getMessage():
            info(escape(line))
        else:
            warn(escape(line), prefix=record.name.split(".")[0])


# ------------------------------------------------------------------------------------ tables
def print_rows(
    title: str,
    headers: list[str],
    rows: list[list[Any]],
    *,
    console: Console | None = None,
    styles: list[str | None] | None = None,
) -> None:
    """A table on a terminal; off a terminal (CI, nohup, Slurm) one plain line per row.

    A log file gets `title` then `  header: value; header: value` lines: nothing wrapped into an
    80-column box, no path broken across lines, grep-able. Columns empty in every row (a label
    column of a task without labels) are left out in both forms. `rows` hold plain text (escaped
    here); `styles` colours whole rows on a terminal.
    """
    out = console or _cached(False)
    keep = [i for i in range(len(headers)) if any(str(r[i]).strip() for r in rows if i < len(r))]
    headers = [headers[i] for i in keep]
    rows = [[("" if r[i] is None else str(r[i])) for i in keep] for r in rows]
    if not out.is_terminal:
        out.print(escape(title), highlight=False)
        for row in rows:
            out.print("  " + escape("; ".join(f"{h}: {v}" for h, v in zip(headers, row) if v)), highlight=False)
        return
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_lines=False)
    for h in headers:
        table.add_column(h, overflow="fold")
    for i, row in enumerate(rows):
        table.add_row(*[escape(v) for v in row], style=(styles[i] if styles else None))
    out.print(table)
