"""Experiment tracking: MLflow (default, local sqlite store) or nothing.

Where runs go: `tracking.uri` in the config, else the MLFLOW_TRACKING_URI environment variable,
else `sqlite:///<output_dir>/mlflow.db` (MLflow 3 refuses a bare ./mlruns file store unless told;
sqlite needs no server). A plain directory path or `file:` URI still works: the user asked for it,
so MLFLOW_ALLOW_FILE_STORE is set for this process.

We talk to MLflow through `MlflowClient` on an explicit run id instead of the fluent API's
process-global "active run", so nothing leaks between runs in one process (tests, experiments).
One exception: when the caller already has an active run (`with mlflow.start_run():` in a
notebook, or kedro-mlflow around a Kedro pipeline), tunelab logs into that run instead of
starting a second one, and leaves ending it to its owner.
Params are the flattened resolved config, secrets masked; env vars are never logged.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from tunelab.config.schema import Config

MAX_PARAM_CHARS = 6000  # MLflow's limit for a param value
_BATCH = 100  # MLflow's limit for params per log_batch call


class Tracker(Protocol):
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None: ...
    def log_artifact(self, path: str | Path, subdir: str | None = None) -> None: ...
    def set_tags(self, tags: dict[str, str]) -> None: ...
    def end(self, status: str = "FINISHED") -> None: ...


class NullTracker:
    """`tracking: none`: every call is a no-op and nothing is written anywhere."""

    run_id: str | None = None
    uri: str | None = None

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        pass

    def log_artifact(self, path: str | Path, subdir: str | None = None) -> None:
        pass

    def set_tags(self, tags: dict[str, str]) -> None:
        pass

    def end(self, status: str = "FINISHED") -> None:
        pass


class MlflowTracker:
    """One MLflow run per tunelab run; resumed runs continue the same MLflow run (id in run.json)."""

    def __init__(self, uri: str, experiment: str | None, run_name: str, run_id: str | None = None):
        from mlflow.tracking import MlflowClient

        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri)
        self.owned = experiment is not None  # False: the caller's active run, which the caller ends
        if not self.owned:
            self.run_id = str(run_id)
            return
        exp = self.client.get_experiment_by_name(experiment)
        exp_id = (
            exp.experiment_id
            if exp is not None
            else self.client.create_experiment(experiment, artifact_location=_artifact_location(uri))
        )
        if run_id is not None and self._exists(run_id):
            self.run_id = run_id
            self.client.update_run(run_id, status="RUNNING")
        else:
            self.run_id = self.client.create_run(exp_id, run_name=run_name).info.run_id

    def _exists(self, run_id: str) -> bool:
        try:
            self.client.get_run(run_id)
            return True
        except Exception:  # MlflowException for an unknown id (e.g. another store)
            return False

    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        existing = self.client.get_run(self.run_id).data.params
        items = [Param(k, _param_value(v)) for k, v in params.items() if k not in existing]
        for i in range(0, len(items), _BATCH):
            self.client.log_batch(self.run_id, params=items[i : i + _BATCH], synchronous=True)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        import time

        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        items = [Metric(_metric_key(k), float(v), ts, step or 0) for k, v in metrics.items()]
        for i in range(0, len(items), 1000):
            self.client.log_batch(self.run_id, metrics=items[i : i + 1000], synchronous=True)

    def log_artifact(self, path: str | Path, subdir: str | None = None) -> None:
        if Path(path).exists():
            self.client.log_artifact(self.run_id, str(path), artifact_path=subdir)

    def set_tags(self, tags: dict[str, str]) -> None:
        for k, v in tags.items():
            self.client.set_tag(self.run_id, k, str(v)[:5000])

    def end(self, status: str = "FINISHED") -> None:
        if self.owned:
            self.client.set_terminated(self.run_id, status=status)
        elif status != "FINISHED":  # the owner ends the run; the failure is still worth a tag
            self.set_tags({"tunelab.status": status})


def tracking_uri(cfg: Config) -> str:
    """The tracking URI this config resolves to (see module docstring for the order)."""
    uri = (
        cfg.tracking.uri
        or os.environ.get("MLFLOW_TRACKING_URI")
        or f"sqlite:///{Path(cfg.output_dir).resolve() / 'mlflow.db'}"
    )
    if "://" not in uri and not uri.startswith("databricks"):
        uri = Path(uri).expanduser().resolve().as_uri()  # a plain path: a file store
    if uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    return uri


def start_tracker(cfg: Config, run_dir: Path, run_id: str | None = None) -> MlflowTracker | NullTracker:
    """A tracker for this run, with the resolved config logged as params."""
    from tunelab import ui
    from tunelab.config.loader import flatten

    if cfg.tracking.backend == "none":
        return NullTracker()
    import mlflow  # configures its loggers on import; quiet them afterwards

    # MLflow's alembic migrations log a screenful of INFO lines on a new sqlite store.
    ui.quiet_loggers("mlflow", "alembic")
    active = _reusable_active_run(cfg, mlflow)
    if active is not None:
        ui.info(f"tracking: logging into the active MLflow run {active} (started outside tunelab)")
        tracker = MlflowTracker(mlflow.get_tracking_uri(), None, run_name=run_dir.name, run_id=active)
    else:
        tracker = MlflowTracker(tracking_uri(cfg), cfg.tracking.experiment, run_name=run_dir.name, run_id=run_id)
    tracker.log_params(_redact(flatten(cfg)))
    tracker.set_tags(
        {
            "tunelab.run_dir": str(run_dir.resolve()),
            "tunelab.task": cfg.task.type,
            "tunelab.model": _redact({"m": cfg.model.name_or_path})["m"],
        }
    )
    return tracker


def _reusable_active_run(cfg: Config, mlflow: Any) -> str | None:
    """The id of the caller's active MLflow run, if tunelab should log into it.

    Not when `tracking.uri` names another store: the config asked for that store explicitly.
    """
    run = mlflow.active_run()
    if run is None:
        return None
    if cfg.tracking.uri and tracking_uri(cfg) != mlflow.get_tracking_uri():
        return None
    return run.info.run_id


def _artifact_location(uri: str) -> str | None:
    """Artifacts next to a sqlite store (MLflow's default is ./mlruns under the *current* directory)."""
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///") :]).parent / "mlartifacts").resolve().as_uri()
    return None  # file stores and servers manage their own artifact locations


def _param_value(v: Any) -> str:
    text = "" if v is None else str(v)
    return text if len(text) <= MAX_PARAM_CHARS else text[: MAX_PARAM_CHARS - 3] + "..."


def _metric_key(key: str) -> str:
    # MLflow keys allow alphanumerics, _ - . space / ; map anything else (e.g. label names) to _.
    return "".join(c if c.isalnum() or c in "_-. /" else "_" for c in key)


def _redact(params: dict[str, Any]) -> dict[str, Any]:
    try:
        from tunelab.safety.secrets import redact_obj
    except ImportError:  # safety module not present: nothing secret-shaped is expected in a config
        return params
    return redact_obj(params)
