"""The stage functions of the public API: config, validate, prepare, doctor, train, bench, baseline, report.

Each one is what the matching CLI command runs (the CLI parses arguments and prints errors, nothing
more), so a notebook and a terminal get the same checks, files and messages. Heavy imports (torch,
transformers, datasets) happen inside the functions: `import tunelab` stays instant.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from tunelab.config.schema import Config
from tunelab.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from tunelab.api.findings import Findings
    from tunelab.api.run import Run
    from tunelab.data.fixtext import FixReport
    from tunelab.diff import DiffResult

ConfigLike = Union[Config, str, "os.PathLike[str]", Mapping[str, Any]]
"""A `Config`, the path of a YAML file, or the same content as a mapping (e.g. Kedro parameters)."""
Overrides = Union[Sequence[str], Mapping[str, Any], None]
"""`["training.learning_rate=1e-4", ...]` (as `--set`) or `{"training.learning_rate": 1e-4}`."""


@dataclass
class DataSplits:
    """The validated data as training will see it: what `validate` returns."""

    train: pd.DataFrame
    validation: pd.DataFrame | None
    test: pd.DataFrame | None
    label_names: list[str] | None
    warnings: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)
    """What `data_manifest.json` records: file hashes, split method and sizes, label counts."""


def load_config(source: ConfigLike, overrides: Overrides = None, *, source_name: str | None = None) -> Config:
    """Read and validate a config; the same schema, overrides and messages as the CLI.

    `source` is a YAML path, a mapping with the same content, or a `Config` (returned as is unless
    overridden). `overrides` are `--set` strings or a `{dotted.key: value}` mapping. `source_name`
    names a mapping in error messages (default `<dict>`). Raises `ConfigError` with one line that
    names the key (with a did-you-mean for misspelled keys) and a hint.
    """
    from tunelab.config.loader import read_yaml, validate_config

    if isinstance(source, Config):
        if not overrides:
            return source
        raw, name = source.model_dump(mode="json"), source_name or f"<Config {source.name}>"
    elif isinstance(source, Mapping):
        raw, name = _plain(copy.deepcopy(dict(source))), source_name or "<dict>"
    elif isinstance(source, (str, os.PathLike)):
        raw, name = read_yaml(source), source_name or str(source)
    else:
        raise ConfigError(
            f"load_config: expected a path, a mapping or a Config, got {type(source).__name__}",
            hint="pass the path of a YAML config, or a dict with the same keys",
        )
    apply_overrides(raw, overrides)
    return validate_config(raw, source=name)


def apply_overrides(raw: dict[str, Any], overrides: Overrides) -> None:
    """Apply `--set` strings or a `{dotted.key: value}` mapping to a raw config, in place."""
    from tunelab.config.loader import apply_override, set_dotted

    if not overrides:
        return
    if isinstance(overrides, Mapping):
        for key, value in overrides.items():
            set_dotted(raw, str(key), _plain(value), what=f"override {key!r}")
        return
    if isinstance(overrides, str):
        raise ConfigError(f"overrides={overrides!r}: expected a list", hint=f"pass [{overrides!r}]")
    for item in overrides:
        apply_override(raw, item)


def _plain(value: Any) -> Any:
    # Paths are natural in Python code; the schema wants the strings a YAML file would hold.
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _config_and_path(cfg: ConfigLike, overrides: Overrides) -> tuple[Config, Path | None]:
    path = Path(cfg) if isinstance(cfg, (str, os.PathLike)) else None
    return load_config(cfg, overrides), path


@contextlib.contextmanager
def _quiet(enabled: bool) -> Iterator[None]:
    """With `quiet=True`, what a stage prints to stdout goes nowhere (errors still raise)."""
    if not enabled:
        yield
        return
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def validate(cfg: ConfigLike, overrides: Overrides = None, *, quiet: bool = False) -> DataSplits:
    """Read, validate and split the configured data without loading a model; writes nothing.

    Prints the summary `tunelab validate` prints (unless `quiet`). Raises `DataError` naming the
    file, row and column of the first bad value.
    """
    config, _ = _config_and_path(cfg, overrides)  # config errors first, before heavy imports
    from tunelab.pipeline.prepare import validate_from_config

    with _quiet(quiet):
        splits = validate_from_config(config)
    return DataSplits(
        splits.train, splits.validation, splits.test, splits.label_names, list(splits.warnings), splits.manifest
    )


def prepare(cfg: ConfigLike, overrides: Overrides = None, *, quiet: bool = False) -> dict[str, dict[str, float]]:
    """Validate, split and tokenize every split into the cache (so `train` starts warm).

    Returns token-length statistics per split (rows, mean, p50, p90, p99, max, truncation_rate).
    """
    config, _ = _config_and_path(cfg, overrides)
    from tunelab.pipeline.prepare import prepare_from_config

    with _quiet(quiet):
        prepared = prepare_from_config(config)
    return dict(prepared.stats)


def doctor(cfg: ConfigLike, overrides: Overrides = None, *, overfit: bool = False, quiet: bool = False) -> Findings:
    """Preflight checks on the real data and model, without training; never raises for a finding.

    Everything that would stop `train` (bad data, an unloadable model, a device that lacks a
    feature, an exploding initial loss) comes back as an error `Finding`; `findings.ok` is the
    verdict, `findings.print()` the table `tunelab doctor` prints. `overfit=True` adds the
    one-batch overfit test. With `quiet=True` the stage lines go to stderr, nothing to stdout.
    """
    config, _ = _config_and_path(cfg, overrides)
    from tunelab.api.findings import Findings
    from tunelab.pipeline.doctor import diagnose

    if quiet:  # stdout stays clean for a caller that prints a document there (`doctor --json`)
        with contextlib.redirect_stdout(sys.stderr):
            return Findings(diagnose(config, overfit=overfit, quiet=True))
    return Findings(diagnose(config, overfit=overfit))


def doctor_experiment(
    spec: str | os.PathLike[str], overrides: Sequence[str] = (), *, overfit: bool = False, quiet: bool = False
) -> dict[str, Findings]:
    """`doctor` on every variant of an experiment spec, each on its resolved config (fold 0 for k-fold).

    A variant whose config does not validate gets a `config.invalid` error finding; the others are
    still checked. Prints a table per variant and a summary unless `quiet`.
    """
    from tunelab.api.findings import Findings
    from tunelab.experiments.doctor import diagnose_experiment

    results = diagnose_experiment(Path(spec), list(overrides), overfit=overfit, quiet=quiet)
    return {name: Findings(found) for name, found in results.items()}


def train(
    cfg: ConfigLike,
    overrides: Overrides = None,
    *,
    run_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    skip_doctor: bool = False,
) -> Run:
    """Train as configured: validate, split, tokenize, preflight, train, evaluate, predict, track.

    Returns the finished `Run`. `run_dir` writes (or, with `resume`, continues) exactly that
    directory; otherwise a new `<output_dir>/<UTC time>_<name>/`. `resume` without `run_dir`
    continues the newest run of this config's name from its last checkpoint. Stops with a
    `PreflightError` on an error finding unless `skip_doctor`. When an MLflow run is active in
    this process (`mlflow.start_run()`, kedro-mlflow), metrics go to that run.
    """
    config, config_path = _config_and_path(cfg, overrides)
    from tunelab.api.run import Run
    from tunelab.pipeline.train import train_from_config

    path = train_from_config(
        config,
        resume=resume,
        run_dir=Path(run_dir) if run_dir is not None else None,
        skip_doctor=skip_doctor,
        config_path=config_path,
    )
    return Run.open(path)


def fix_text(
    path: str | os.PathLike[str], output: str | os.PathLike[str], columns: Sequence[str] | None = None
) -> FixReport:
    """Repair mojibake (UTF-8 read with a legacy code page) in a data file into a new file
    (`tunelab fix-text`); the report lists every changed cell and any bytes that were lost."""
    from tunelab.data.fixtext import fix_file

    return fix_file(path, output, list(columns) if columns else None)


def schema() -> dict[str, Any]:
    """The JSON schema of the config (what `tunelab schema` prints)."""
    from tunelab.config.loader import json_schema

    return json_schema()


def benchmark(
    cfg: ConfigLike,
    overrides: Overrides = None,
    *,
    steps: int | None = None,
    strategies: Sequence[str] | str | None = None,
    out: str | os.PathLike[str] | None = None,
) -> list[dict[str, Any]]:
    """Measure training throughput of batching/precision strategies side by side (`tunelab bench`).

    Writes bench.md/bench.json/bench.png to `out` (default `<output_dir>/bench`); returns one
    record per measured configuration.
    """
    from dataclasses import asdict

    config, _ = _config_and_path(cfg, overrides)
    from tunelab.bench.harness import bench_command

    names = strategies if strategies is None or isinstance(strategies, str) else ",".join(strategies)
    results = bench_command(config, steps=steps, strategies=names, out=Path(out) if out is not None else None)
    return [asdict(r) for r in results]


def baseline(config: str | os.PathLike[str], overrides: Sequence[str] | None = None) -> dict[str, Any]:
    """Zero-/few-shot baseline through an OpenAI-compatible API, as configured in `baseline:`."""
    from tunelab.experiments.baseline import baseline_command

    return baseline_command(Path(config), overrides=list(overrides or []))


def compare(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> DiffResult:
    """Why two runs (or a run and a YAML config) differ in speed and results, ranked by effect
    (`tunelab diff`). `latest:NAME` names the newest run of a config; `.to_json()` is `--json`."""
    from tunelab.diff import compare as diff_compare

    return diff_compare(a, b)


def report(directory: str | os.PathLike[str], compare: str | os.PathLike[str] | None = None) -> Path:
    """Write report.html (self-contained) and report.md for a run, an experiment or a baseline.

    With `compare` (another run), write a two-run comparison page into `directory` instead.
    """
    if compare is not None:
        from tunelab.diff.page import compare_report

        return compare_report(Path(directory), Path(compare))
    from tunelab.reporting.report import report_command

    return report_command(Path(directory))
