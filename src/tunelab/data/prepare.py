"""`tunelab validate` and `tunelab prepare`: check the data, then tokenize it into the cache.

validate reads, validates and splits every configured file and prints a summary; it loads no
model or tokenizer and writes nothing. prepare also loads the tokenizer and tokenizes every
split into the content-addressed cache, printing length statistics, so `train` starts warm.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tunelab.data.splits import Splits, load_splits

if TYPE_CHECKING:
    from datasets import Dataset
    from rich.console import Console

    from tunelab.config.schema import Config

_SHOWN_LABELS = 8


@dataclass
class Prepared:
    """What prepare produced: the splits, the task and tokenizer used, and tokenized datasets."""

    splits: Splits
    task: Any
    tokenizer: Any
    datasets: dict[str, Dataset] = field(default_factory=dict)
    stats: dict[str, dict[str, float]] = field(default_factory=dict)


def validate_from_config(cfg: Config, console: Console | None = None) -> Splits:
    """Read + validate + split; print rows per split, labels and warnings. Raises DataError."""
    splits = load_splits(cfg)
    print_summary(splits, cfg, console or _console())
    return splits


def prepare_from_config(cfg: Config, console: Console | None = None) -> Prepared:
    """validate, then tokenize every split into `data.cache_dir` and print length statistics."""
    from tunelab.data.roles import target_columns
    from tunelab.data.tokenize import length_stats, tokenize_split
    from tunelab.models.tokenizer import load_tokenizer
    from tunelab.tasks.base import task_from_config

    console = console or _console()
    splits = validate_from_config(cfg, console)
    tokenizer = load_tokenizer(cfg)
    task = task_from_config(cfg, splits.label_names)
    prepared = Prepared(splits, task, tokenizer)
    for name, frame in splits.frames().items():
        if name == "test":  # the inference view: labels/targets of a test file are for scoring only
            frame = frame.drop(columns=[c for c in target_columns(cfg.task) if c in frame.columns])
        dataset = tokenize_split(frame, task, tokenizer, cfg, name)
        prepared.datasets[name] = dataset
        prepared.stats[name] = length_stats(dataset, cfg.data.max_length)
    print_length_stats(prepared.stats, cfg.data.max_length, console)
    console.print(f"tokenized data cached under [bold]{cfg.data.cache_dir}[/]")
    return prepared


def print_summary(splits: Splits, cfg: Config, console: Console) -> None:
    from rich.markup import escape

    from tunelab import ui

    manifest = splits.manifest
    files, split = manifest["files"], manifest["split"]
    rows = []
    for name, frame in splits.frames().items():
        carved = name == "validation" and name not in files or name == "train" and split["method"] != "file"
        source = f"{files['train']['path']} ({_how(split)})" if carved else files[name]["path"]
        rows.append([name, source, str(len(frame)), _top_labels(manifest["label_counts"].get(name))])
    # A table on a terminal, a line per split in a log; a labels column only when a split has labels.
    ui.print_rows(f"data: {cfg.task.type}", ["split", "source", "rows", "labels (top)"], rows, console=console)
    if splits.label_names:
        shown = ", ".join(map(str, splits.label_names[:_SHOWN_LABELS]))
        more = " ..." if len(splits.label_names) > _SHOWN_LABELS else ""
        console.print(f"{len(splits.label_names)} labels: {shown}{more}", markup=False, emoji=False)
    if manifest.get("kfold"):
        kf = manifest["kfold"]
        console.print(
            f"k-fold: k={kf['k']} seed={kf['seed']} fold sizes {kf['fold_sizes']}"
            + (f", fold {kf['fold']} is validation" if kf["fold"] is not None else "")
        )
    for warning in splits.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, markup=True, emoji=False)
    console.print(f"[green]data OK[/] ({len(splits.warnings)} warning(s))")


def _how(split: dict[str, Any]) -> str:
    if split["method"] == "kfold":
        return f"k-fold, fold {split['fold']} held out"
    if split["method"] == "holdout":
        kind = "stratified" if split["stratified"] else "random"
        return f"{kind} {split['validation_split']:.0%} holdout, seed {split['split_seed']}"
    return "file"


def _top_labels(counts: dict[str, int] | None) -> str:
    if not counts:
        return ""
    shown = list(counts.items())[:3]
    return ", ".join(f"{k}: {v}" for k, v in shown) + (f" (+{len(counts) - 3} more)" if len(counts) > 3 else "")


def print_length_stats(stats: dict[str, dict[str, float]], max_length: int, console: Console) -> None:
    from rich.table import Table

    table = Table(title=f"token lengths (max_length {max_length})", title_justify="left")
    for column in ("split", "rows", "mean", "p50", "p90", "p99", "max", "truncated"):
        table.add_column(column, justify="left" if column == "split" else "right")
    for name, s in stats.items():
        table.add_row(
            name,
            str(s["rows"]),
            f"{s['mean']:.1f}",
            f"{s['p50']:.0f}",
            f"{s['p90']:.0f}",
            f"{s['p99']:.0f}",
            str(s["max"]),
            f"{s['truncation_rate']:.1%}",
        )
    console.print(table)


def _console() -> Console:
    from tunelab import ui

    return ui.console()  # plain and wide off a terminal; emoji off ("train.csv:label:")
