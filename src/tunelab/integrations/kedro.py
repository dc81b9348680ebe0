"""tunelab's stages as Kedro nodes: split, tokenize, doctor, train, evaluate, predict.

    pip install "tunelab[kedro]"

    # pipeline_registry.py
    from tunelab.integrations.kedro import create_pipeline
    def register_pipelines():
        return {"__default__": create_pipeline(data="intents", test="intents_test")}

    # settings.py: one-line errors instead of tracebacks, bad parameters refused before any node
    from tunelab.integrations.kedro import TunelabHooks
    HOOKS = (TunelabHooks(),)

The config is the `tunelab` entry of `parameters.yml`: the same keys as a tunelab YAML file,
validated by the same schema (unknown keys get the same did-you-mean), minus `data.*_file`: the
data come from the catalog as DataFrames. Each node stages its DataFrames as content-addressed
Parquet files under `<output_dir>/kedro_inputs/` and calls the public API, so a frame is read,
validated, split, tokenized and cached exactly as the file would be by `tunelab train`.

MLflow: with kedro-mlflow, the run it opens for the pipeline is the one tunelab logs into
(`tracking.uri` unset, or equal to kedro-mlflow's); without it tunelab tracks as configured.

Everything here is a plain function of DataFrames, dicts and strings (the run directory), so the
nodes also work outside Kedro; only `create_pipeline` and `TunelabHooks` import kedro.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd  # at runtime, not only for type checkers: Kedro reads the nodes' type hints

from tunelab import api
from tunelab.errors import ConfigError, PreflightError, TunelabError

try:
    from kedro.framework.hooks import hook_impl
except ImportError:  # the node functions work without kedro; only the hooks and the pipeline need it

    def hook_impl(func: Any) -> Any:
        return func


if TYPE_CHECKING:
    from kedro.pipeline import Pipeline

    from tunelab.config.schema import Config

PARAMS = "params:tunelab"
"""Where the nodes read the config from (the `tunelab` entry of parameters.yml)."""
DATA_KEYS = ("train_file", "validation_file", "test_file")
STAGING = "kedro_inputs"


def config_from_params(params: Mapping[str, Any], **files: str) -> Config:
    """Validate the `tunelab` parameters with the config schema; `files` fill `data.*_file`.

    Raises `ConfigError` naming the parameter (`params:tunelab: training.learnig_rate: unknown
    key; did you mean training.learning_rate?`). `data.*_file` keys are refused: in a Kedro
    project the catalog owns the data.
    """
    if not isinstance(params, Mapping):
        raise ConfigError(
            f"{PARAMS}: expected a mapping of tunelab config keys, got {type(params).__name__}",
            hint="put the config under `tunelab:` in conf/base/parameters.yml",
        )
    raw: dict[str, Any] = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in params.items()}
    data = raw.setdefault("data", {})
    if isinstance(data, dict):
        for key in DATA_KEYS:
            if key in data:
                raise ConfigError(
                    f"{PARAMS}: data.{key}: set by the Kedro catalog, not by parameters",
                    hint="remove it from parameters.yml; pass the dataset to create_pipeline() instead",
                )
        data["train_file"] = files.pop("train_file", "<catalog>")  # the schema requires one
        data.update(files)
    return api.load_config(raw, source_name=PARAMS)


def stage_frame(frame: pd.DataFrame, cfg: Config, name: str) -> str:
    """Write `frame` once to `<output_dir>/kedro_inputs/<name>-<hash>.parquet`; return its path.

    Content-addressed: the same rows give the same file, so tunelab's tokenization cache and the
    run's data manifest (file hashes) see a stable input across `kedro run`s.
    """
    from tunelab.io import atomic_path

    if not isinstance(frame, pd.DataFrame):
        raise ConfigError(
            f"{name}: expected a DataFrame from the catalog, got {type(frame).__name__}",
            hint="use a pandas dataset (pandas.CSVDataset, pandas.ParquetDataset, ...) for tunelab nodes",
        )
    digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).values.tobytes())
    digest.update("\x00".join(map(str, frame.columns)).encode())
    path = Path(cfg.output_dir) / STAGING / f"{name}-{digest.hexdigest()[:16]}.parquet"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, suffix=".parquet") as tmp:
            frame.to_parquet(tmp, index=False)
    return str(path)


def _config(params: Mapping[str, Any], train: pd.DataFrame, validation: pd.DataFrame | None = None) -> Config:
    base = config_from_params(params)  # bad parameters fail before anything is written
    files = {"train_file": stage_frame(train, base, "train")}
    if validation is not None:
        files["validation_file"] = stage_frame(validation, base, "validation")
    return config_from_params(params, **files)


def split(data: pd.DataFrame, params: Mapping[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validate and split `data` into (train, validation) as configured (stratified holdout or a k-fold fold)."""
    splits = api.validate(_config(params, data))
    if splits.validation is None:
        raise ConfigError(f"{PARAMS}: the split left no validation rows", hint="set data.validation_split")
    return splits.train.reset_index(drop=True), splits.validation.reset_index(drop=True)


def tokenize(train: pd.DataFrame, validation: pd.DataFrame, params: Mapping[str, Any]) -> dict[str, Any]:
    """Tokenize both splits into tunelab's cache (so training starts warm); returns length statistics."""
    return api.prepare(_config(params, train, validation))


def doctor(
    train: pd.DataFrame, validation: pd.DataFrame, params: Mapping[str, Any], after: Any = None
) -> dict[str, Any]:
    """Preflight checks on the real data and model; raises `PreflightError` on an error finding.

    Returns the findings document (`tunelab doctor --json`). `doctor.enabled: false` skips it.
    `after` (the tokenize node's output) is taken only so that Kedro fills the cache first.
    """
    del after
    cfg = _config(params, train, validation)
    if not cfg.doctor.enabled:
        return {"ok": True, "skipped": True, "findings": []}
    findings = api.doctor(cfg)
    findings.print()
    if not findings.ok:
        first = findings.errors[0]
        raise PreflightError(
            f"preflight found {len(findings.errors)} error(s); first: {first.id}: {first.title}",
            hint=(first.fix or "see the doctor table above") + "; or set doctor.enabled: false",
        )
    return findings.to_json()


def train(train: pd.DataFrame, validation: pd.DataFrame, params: Mapping[str, Any], after: Any = None) -> str:
    """Train on the two splits; returns the run directory (a string, e.g. for a text dataset).

    `after` (the doctor's findings, or the length statistics without a doctor node) is taken
    only so that Kedro runs those nodes first; training runs its own preflight as usual.
    """
    del after
    return str(api.train(_config(params, train, validation)).path)


def evaluate(run_dir: str, data: pd.DataFrame) -> dict[str, Any]:
    """Score labelled rows with the trained run; the metrics (also under RUN_DIR/evaluations/kedro/)."""
    return api.Run.open(run_dir).evaluate(data, name="kedro")


def predict(run_dir: str, data: pd.DataFrame) -> pd.DataFrame:
    """Predict rows with the trained run: id, prediction columns and probabilities, in input order."""
    return api.Run.open(run_dir).predict(data)


DATASETS = {
    "data": "tunelab_data",
    "test": "tunelab_test",
    "params": PARAMS,
    "train": "tunelab_train",
    "validation": "tunelab_validation",
    "length_stats": "tunelab_length_stats",
    "findings": "tunelab_findings",
    "run_dir": "tunelab_run_dir",
    "metrics": "tunelab_metrics",
    "predictions": "tunelab_predictions",
}


def create_pipeline(**kwargs: Any) -> Pipeline:
    """The tunelab pipeline: split -> tokenize -> doctor -> train -> evaluate + predict.

    Keyword arguments rename the datasets (defaults in `DATASETS`): `data` (labelled rows to
    split), `test` (rows to evaluate and predict; `None` drops both nodes), `params`, and the
    outputs `train`, `validation`, `length_stats`, `findings`, `run_dir`, `metrics`,
    `predictions`. `doctor=False` drops the doctor node (training still runs its preflight).
    """
    from kedro.pipeline import Node, Pipeline

    with_doctor = bool(kwargs.pop("doctor", True))
    unknown = [k for k in kwargs if k not in DATASETS]
    if unknown:
        close = difflib.get_close_matches(unknown[0], [*DATASETS, "doctor"], n=1)
        raise ConfigError(
            f"create_pipeline({unknown[0]}=...): unknown argument" + (f"; did you mean {close[0]}?" if close else ""),
            hint=f"known: {', '.join([*DATASETS, 'doctor'])}",
        )
    d = {**DATASETS, **kwargs}
    nodes = [
        Node(split, [d["data"], d["params"]], [d["train"], d["validation"]], name="tunelab_split"),
        Node(tokenize, [d["train"], d["validation"], d["params"]], d["length_stats"], name="tunelab_tokenize"),
    ]
    splits = [d["train"], d["validation"], d["params"]]
    gate = [*splits, d["length_stats"]]  # the extra input orders the nodes: the cache is warm first
    if with_doctor:
        nodes.append(Node(doctor, gate, d["findings"], name="tunelab_doctor"))
        gate = [*splits, d["findings"]]
    nodes.append(Node(train, gate, d["run_dir"], name="tunelab_train"))
    if d["test"] is not None:
        nodes.append(Node(evaluate, [d["run_dir"], d["test"]], d["metrics"], name="tunelab_evaluate"))
        nodes.append(Node(predict, [d["run_dir"], d["test"]], d["predictions"], name="tunelab_predict"))
    return Pipeline(nodes)


class TunelabHooks:
    """Kedro hooks: refuse bad `tunelab` parameters before any node runs, and report a
    `TunelabError` as tunelab's CLI does (one `error:` line and a `hint:` line, exit code 2)
    instead of a traceback. Register in settings.py: `HOOKS = (TunelabHooks(),)`."""

    def __init__(self, params: str = PARAMS) -> None:
        self.params = params

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        if self.params not in pipeline.inputs():
            return
        try:
            config_from_params(catalog.load(self.params))
        except TunelabError as exc:
            _exit(exc)

    @hook_impl
    def on_node_error(self, error: Exception) -> None:
        if isinstance(error, TunelabError):
            _exit(error)


def _exit(exc: TunelabError) -> None:
    """Kedro prints a traceback for any exception; a user error gets tunelab's two lines instead."""
    from tunelab import ui

    ui.err().print(f"[bold red]error:[/] {exc.message}", markup=True, highlight=False)
    if exc.hint:
        ui.err().print(f"[yellow]hint:[/] {exc.hint}", markup=True, highlight=False)
    raise SystemExit(exc.exit_code)
