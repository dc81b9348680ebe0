"""`Run`: a finished (or resumable) run directory as a Python object.

`tunelab.train(...)` returns one; `Run.open(path)` opens any directory `tunelab train` wrote.
Predicting and scoring reuse the loaded model between calls (a notebook predicts many frames),
so only the first call pays for loading it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from tunelab import runs
from tunelab.errors import DataError, RunDirError

if TYPE_CHECKING:
    import pandas as pd

    from tunelab.api.findings import Findings
    from tunelab.config.schema import Config
    from tunelab.diff import DiffResult

DATAFRAME = "<DataFrame>"  # how messages name an in-memory input (a file is named by its path)
FrameOrPath = Union["pd.DataFrame", str, "os.PathLike[str]"]
"""A DataFrame with the config's columns, or a CSV/TSV/JSONL/Parquet file."""


class Run:
    """A run directory: its config, metrics, history, and the trained model for predict/evaluate."""

    def __init__(self, path: Path, config: Config, info: dict[str, Any]) -> None:
        self.path = path
        """The run directory."""
        self.config = config
        """The resolved config the run was trained with (secrets redacted)."""
        self.info = info
        """run.json: tunelab version, status, parameter counts, MLflow run id."""
        self._loaded: tuple[tuple[str, ...], Any] | None = None

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Run:
        """Open a run directory written by `tunelab train` (raises `RunDirError` for anything else)."""
        run = runs.load_run(Path(path))
        return cls(run.path, run.config, run.info)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def metrics(self) -> dict[str, Any]:
        """metrics.json: final scores per split (e.g. `run.metrics["validation"]["macro_f1"]`)."""
        return self._json(runs.METRICS, "the run has not finished; `tunelab train CONFIG --resume`")

    @property
    def history(self) -> pd.DataFrame:
        """history.jsonl as a DataFrame: one row per logged step (loss, grad norm, lr, tokens/s, eval)."""
        import pandas as pd

        path = self.path / runs.HISTORY
        if not path.is_file():
            return pd.DataFrame()
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return pd.DataFrame(rows)

    @property
    def findings(self) -> Findings:
        """The preflight findings recorded before training (empty if the doctor was skipped)."""
        from tunelab.api.findings import Findings
        from tunelab.diagnostics.findings import Finding

        path = self.path / runs.PREFLIGHT
        if not path.is_file():
            return Findings()
        data = json.loads(path.read_text(encoding="utf-8"))
        items = data.get("findings", data) if isinstance(data, dict) else data
        return Findings(Finding.from_dict(d) for d in items)

    def predict(
        self,
        data: FrameOrPath,
        *,
        output: str | os.PathLike[str] | None = None,
        overrides: list[str] | None = None,
    ) -> pd.DataFrame:
        """Predict rows with the trained model; returns them in input order.

        Columns: the id column, the task's prediction columns (e.g. `prediction`, top-k) and
        `probs` for classification. The input passes the same validation as training data (the
        label column is optional). With `output`, the frame is also written there atomically
        (CSV, TSV, JSONL or Parquet by suffix), as `tunelab predict` does.
        """
        from tunelab.inference.predict import (
            check_output_path,
            predict_frame,
            prediction_frame,
            submission_columns,
            write_frame,
        )
        from tunelab.ui import console

        if output is not None:
            check_output_path(Path(output), Path(data) if isinstance(data, (str, os.PathLike)) else None)
        frame, (cfg, task, model, tokenizer, plan) = self._input_and_model(data, "predict", overrides)
        prediction = predict_frame(task, model, tokenizer, frame, cfg, plan)
        with_probs = output is None or Path(output).suffix.lower() in (".jsonl", ".json")
        out = submission_columns(prediction_frame(prediction, cfg.inference.id_column, with_probs=with_probs), cfg)
        if output is not None:
            write_frame(out, Path(output))
            console(stderr=True).print(f"wrote {len(out)} predictions to {output}")
        return out

    def evaluate(
        self, data: FrameOrPath, *, overrides: list[str] | None = None, name: str | None = None
    ) -> dict[str, Any]:
        """Score a labelled file or frame; returns the metrics (as `tunelab evaluate`).

        Also written under `RUN_DIR/evaluations/<name>/` (metrics.json, confusion matrix,
        predictions.jsonl); `name` defaults to the file's stem, or `dataframe`.
        """
        from tunelab.pipeline.evaluate import write_evaluation

        frame, (cfg, task, model, tokenizer, plan) = self._input_and_model(data, "validation", overrides)
        prediction = task.predict(model, tokenizer, frame, cfg, plan)
        report = task.score(prediction, frame)
        source = str(data) if isinstance(data, (str, os.PathLike)) else DATAFRAME
        label = name or (Path(data).stem if isinstance(data, (str, os.PathLike)) else "dataframe")
        write_evaluation(self.path, cfg, task, prediction, frame, report, source=source, name=label)
        return report

    def report(self, compare: Run | str | os.PathLike[str] | None = None) -> Path:
        """Write report.html and report.md into the run directory; returns the HTML path.

        With `compare` (another run), a two-run comparison page instead (`tunelab report --compare`).
        """
        if compare is not None:
            from tunelab.diff.page import compare_report

            return compare_report(self.path, compare.path if isinstance(compare, Run) else Path(compare))
        from tunelab.reporting.report import report_command

        return report_command(self.path)

    def diff(self, other: Run | str | os.PathLike[str]) -> DiffResult:
        """Why this run and `other` (another run, or a YAML config) differ in speed and results,
        differences ranked by effect (`tunelab diff`); `.to_json()` is the `--json` document."""
        from tunelab.diff import compare

        return compare(self.path, other.path if isinstance(other, Run) else other)

    def serve(
        self, overrides: list[str] | None = None, *, model_dir: str | os.PathLike[str] | None = None, **flags: Any
    ) -> None:
        """Serve the run over HTTP until SIGTERM/SIGINT (`tunelab serve`); `flags` are `serve.*` keys
        (host, port, max_batch_size, max_wait_ms, max_queue, workers, api_key_env, ...)."""
        from tunelab.serve.server import serve_command

        serve_command(self.path, list(overrides or []), model_dir=Path(model_dir) if model_dir else None, flags=flags)

    def export(self, output: str | os.PathLike[str] | None = None, *, merge: bool = False) -> Path:
        """Copy the trained model out (merging LoRA adapters into the base weights with `merge`)."""
        from tunelab.models.export import export_run

        return export_run(self.path, output=Path(output) if output is not None else None, merge=merge)

    def _input_and_model(self, data: FrameOrPath, split: str, overrides: list[str] | None) -> tuple[Any, Any]:
        """The validated input, then (config, task, model, tokenizer, plan).

        The input is checked first (seconds), the model loaded after (slow), and only once per
        set of overrides: a notebook predicts many frames with one Run.
        """
        from tunelab.pipeline.predict import load_trained_run, run_config

        key = tuple(overrides or ())
        run, cfg = run_config(self.path, list(key))
        frame = _read(cfg, data, split=split)
        if self._loaded is None or self._loaded[0] != key:
            self._loaded = None  # free the previous model before loading another
            self._loaded = (key, load_trained_run(run, cfg))
        return frame, self._loaded[1]

    def _json(self, name: str, hint: str) -> dict[str, Any]:
        path = self.path / name
        if not path.is_file():
            raise RunDirError(f"{self.path}: no {name}", hint=hint)
        return json.loads(path.read_text(encoding="utf-8"))

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, task={self.config.task.type!r}, status={self.info.get('status')!r})"


def _read(cfg: Config, data: FrameOrPath, split: str) -> pd.DataFrame:
    """A file goes through the training readers; a DataFrame through the same value rules and checks."""
    import pandas as pd

    from tunelab.inference.predict import read_input

    if isinstance(data, (str, os.PathLike)):
        return read_input(cfg, Path(data), split=split)
    if not isinstance(data, pd.DataFrame):
        raise DataError(
            f"expected a DataFrame or a file path, got {type(data).__name__}",
            hint="pass a pandas DataFrame or the path of a CSV/TSV/JSONL/Parquet file",
        )
    from tunelab.data.readers import from_pandas
    from tunelab.data.roles import roles_for
    from tunelab.data.validate import validate_frame
    from tunelab.ui import warn

    frame = from_pandas(data, DATAFRAME)
    for warning in validate_frame(
        frame,
        DATAFRAME,
        roles_for(cfg.task, split),
        imbalance_warn_ratio=cfg.data.imbalance_warn_ratio,
        mojibake_max_share=cfg.data.mojibake_max_share,
    ):
        warn(warning, prefix="data warning")
    return frame
