"""The one prepare path: config -> validated splits -> Task -> tokenizer -> tokenized datasets.

`prepare` is what `tunelab train`, `prepare`, `doctor` and `bench` build their inputs with (and
`predict` reads its file through the same readers and validators, data.readers/data.validate),
so every command sees the same rows and the same cached tokens. The commands differ only in
which splits they tokenize and what they print.

`tunelab validate` reads, validates and splits every configured file and prints a summary; it
loads no model or tokenizer and writes nothing. `tunelab prepare` also tokenizes every split into
the content-addressed cache, printing length statistics, so `train` starts warm.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tunelab import ui
from tunelab.data.splits import Splits, load_splits

if TYPE_CHECKING:
    from datasets import Dataset
    from rich.console import Console

    from tunelab.config.schema import Config
    from tunelab.protocols import Task

_SHOWN_LABELS = 8
TRAINING_SPLITS = ("train", "validation")  # test is predicted from its frame after training


@dataclass
class Prepared:
    """What prepare produced: the splits, the task and tokenizer used, and tokenized datasets.

    Filled step by step, so a caller that catches a failure (doctor) sees how far it got.
    """

    splits: Splits | None = None
    task: Task | None = None
    tokenizer: Any = None
    datasets: dict[str, Dataset] = field(default_factory=dict)
    stats: dict[str, dict[str, float]] = field(default_factory=dict)


def prepare(
    cfg: Config,
    tokenize: Iterable[str] = TRAINING_SPLITS,
    splits: Splits | None = None,
    into: Prepared | None = None,
) -> Prepared:
    """Splits (read + validated unless given), the Task, the tokenizer, and the named splits
    tokenized through the cache with their length statistics.

    The data is validated before the tokenizer loads: a bad file fails fast, without a model
    download. A "test" split is tokenized in its inference view (labels/targets dropped: in a
    test file they are for scoring only).
    """
    from tunelab.data.roles import target_columns
    from tunelab.data.tokenize import length_stats, tokenize_split
    from tunelab.models.tokenizer import load_tokenizer
    from tunelab.tasks.base import task_from_config

    prepared = into if into is not None else Prepared()
    prepared.splits = splits if splits is not None else load_splits(cfg)
    prepared.task = task_from_config(cfg, prepared.splits.label_names)
    prepared.tokenizer = load_tokenizer(cfg)
    wanted = set(tokenize)
    for name, frame in prepared.splits.frames().items():
        if name not in wanted:
            continue
        if name == "test":
            frame = frame.drop(columns=[c for c in target_columns(cfg.task) if c in frame.columns])
        dataset = tokenize_split(frame, prepared.task, prepared.tokenizer, cfg, name)
        prepared.datasets[name] = dataset
        prepared.stats[name] = length_stats(dataset, cfg.data.max_length)
    return prepared


def validate_from_config(cfg: Config, console: Console | None = None) -> Splits:
    """Read + validate + split; print rows per split, labels and warnings. Raises DataError."""
    from tunelab.models.lora import check_targets_from_config

    check_targets_from_config(cfg)  # from the model's config alone: no weights are loaded
    splits = load_splits(cfg)
    print_summary(splits, cfg, console or ui.console())
    return splits


def prepare_from_config(cfg: Config, console: Console | None = None) -> Prepared:
    """validate, then tokenize every split into `data.cache_dir` and print length statistics."""
    console = console or ui.console()
    splits = validate_from_config(cfg, console)
    prepared = prepare(cfg, tokenize=splits.frames(), splits=splits)
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
    from tunelab import ui

    headers = ["split", "rows", "mean", "p50", "p90", "p99", "max", "truncated"]
    rows = [
        [
            name,
            str(s["rows"]),
            f"{s['mean']:.1f}",
            f"{s['p50']:.0f}",
            f"{s['p90']:.0f}",
            f"{s['p99']:.0f}",
            str(s["max"]),
            f"{s['truncation_rate']:.1%}",
        ]
        for name, s in stats.items()
    ]
    ui.print_rows(f"token lengths (max_length {max_length})", headers, rows, console=console)
