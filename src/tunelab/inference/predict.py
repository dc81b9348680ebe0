"""Prediction files in and out: reading + validating an input, predicting a frame, writing results.

An input passes the same validation as training data (data.readers/data.validate; the label
column is optional). `predict_frame` is the one prediction path for a validated frame (TTA or
the task's own batched prediction). Results are written back in input order, atomically: CSV by
default, JSONL for `.jsonl`, TSV for `.tsv`, Parquet for `.parquet`. `tunelab predict` itself,
which loads a run's model and task, is pipeline/predict.py.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunelab import ui
from tunelab.errors import ConfigError, DataError
from tunelab.io import atomic_path

if TYPE_CHECKING:
    import pandas as pd

    from tunelab.config.schema import Config
    from tunelab.protocols import Prediction
    from tunelab.runtime.plan import RuntimePlan

WRITERS = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
# Column names of a run's own prediction files (see run_predictions_frame).
ID, PREDICTION, GOLD_LABEL, GOLD_TEXT = "id", "prediction", "label", "reference"


def predict_frame(
    task: Any, model: Any, tokenizer: Any, frame: pd.DataFrame, cfg: Config, plan: RuntimePlan
) -> Prediction:
    """The one prediction path for a validated frame (`tunelab predict` and `tunelab serve` share it)."""
    if cfg.inference.tta.enabled:  # test-time augmentation (views / decodes), inference/tta.py
        from tunelab.inference.tta import tta_predict

        prediction, _ = tta_predict(task, model, tokenizer, frame, cfg, plan)
        return prediction
    return task.predict(model, tokenizer, frame, cfg, plan)


def read_input(cfg: Config, path: Path, split: str) -> pd.DataFrame:
    """Read + validate a file for prediction ("predict": no label needed) or scoring ("validation")."""
    from tunelab.data.readers import read_table
    from tunelab.data.roles import roles_for
    from tunelab.data.validate import validate_frame

    if not path.is_file():
        raise DataError(f"{path}: input file not found", hint="pass an existing CSV/TSV/JSONL/Parquet file")
    frame = read_table(path, cfg.data.format if cfg.data.format != "auto" else "auto", cfg.data.encoding)
    for warning in validate_frame(
        frame,
        path,
        roles_for(cfg.task, split),
        imbalance_warn_ratio=cfg.data.imbalance_warn_ratio,
        mojibake_max_share=cfg.data.mojibake_max_share,
    ):
        ui.err().print(f"[yellow]data warning:[/] {warning}")
    return frame


def check_output_path(output: Path, input: Path | None = None) -> None:
    """Refuse outputs we would write wrongly or destructively, before any work is done."""
    if output.suffix.lower() not in WRITERS:
        raise ConfigError(
            f"--output {output}: unknown format {output.suffix or '(no suffix)'}",
            hint=f"use one of {', '.join(WRITERS)}",
        )
    if output.exists() and output.is_dir():
        raise ConfigError(f"--output {output}: is a directory", hint="pass a file path, e.g. predictions.csv")
    if input is not None and output.resolve() == input.resolve():
        raise ConfigError(f"--output {output}: same file as --input", hint="write predictions to a new file")
    parent = output.parent if str(output.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise ConfigError(
            f"--output {output}: {parent} is not a directory", hint="choose an output path in a directory"
        )


def prediction_frame(
    prediction: Prediction, id_name: str = "id", with_probs: bool = False, gold: list[Any] | None = None
) -> pd.DataFrame:
    """id, the task's columns (prediction, top-k ...), optional gold `label` and `probs` (list per row)."""
    import pandas as pd

    data: dict[str, Any] = {id_name: list(prediction.ids)}
    data.update({k: list(v) for k, v in prediction.columns.items()})
    if gold is not None:
        data["label"] = list(gold)
    probs = prediction.extra.get("probs")
    if with_probs and probs is not None:
        data["probs"] = [[round(float(p), 6) for p in row] for row in probs]
    return pd.DataFrame(data)


def submission_columns(frame: pd.DataFrame, cfg: Config) -> pd.DataFrame:
    """A user's file names the predicted value `inference.prediction_column`, whatever the task.

    Classification predicts into `prediction` (with its top-k columns); renaming here means the
    configured name is honoured for every task rather than only for the generative ones.
    """
    name = cfg.inference.prediction_column
    if PREDICTION in frame.columns and name not in frame.columns:
        return frame.rename(columns={PREDICTION: name})
    return frame


def run_predictions_frame(
    prediction: Prediction, cfg: Config, gold: list[Any] | None = None, with_probs: bool = True
) -> pd.DataFrame:
    """A run's own predictions file (`predictions/<split>.jsonl`, evaluations): fixed column names.

    `id`, `prediction`, the task's other columns (top-k ...), the gold answer as `label` (a class:
    classification, sft with a label set) or `reference` (text), and `probs`. Fixed because the
    configured id/prediction names are free-form submission names: `tunelab report` and the
    ensembles must find the columns, and a prediction column configured as `label` must never be
    overwritten by the gold `label` of the same row.
    """
    columns = dict(prediction.columns)
    configured = cfg.inference.prediction_column
    if configured != PREDICTION and configured in columns:
        columns = {PREDICTION if k == configured else k: v for k, v in columns.items()}
    frame = prediction_frame(dataclasses.replace(prediction, columns=columns), ID, with_probs=with_probs)
    if gold is not None:
        frame.insert(min(2, len(frame.columns)), gold_column_name(cfg), list(gold))
    return frame


def gold_column_name(cfg: Config) -> str:
    """`label` when the answer is a class, `reference` when it is free text."""
    return GOLD_LABEL if cfg.task.class_column() else GOLD_TEXT


def write_frame(frame: pd.DataFrame, path: Path) -> Path:
    """Write atomically in the format the suffix names."""
    suffix = path.suffix.lower()
    with atomic_path(path, suffix=suffix) as tmp:
        if suffix in (".jsonl", ".json"):
            with open(tmp, "w", encoding="utf-8") as fh:
                for rec in frame.to_dict(orient="records"):
                    fh.write(json.dumps(rec, ensure_ascii=False, default=_plain) + "\n")
        elif suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False, sep="\t" if suffix == ".tsv" else ",")
    return path


def _plain(obj: Any) -> Any:
    item = getattr(obj, "item", None)
    if callable(item):
        return item()
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):
        return tolist()
    return str(obj)
