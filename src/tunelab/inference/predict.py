"""`tunelab predict RUN_DIR --input F --output O`: a trained run predicts a file.

The input passes the same validation as training data (H1's readers/validators; the label
column is optional). Rows are batched in length order by the task and written back in input
order, atomically: CSV by default, JSONL for `.jsonl`, TSV for `.tsv`, Parquet for `.parquet`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunelab.errors import ConfigError, DataError
from tunelab.io import atomic_path

if TYPE_CHECKING:
    import pandas as pd

    from tunelab.config.schema import Config
    from tunelab.runtime.plan import RuntimePlan
    from tunelab.tasks.base import Prediction

WRITERS = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
# Column names of a run's own prediction files (see run_predictions_frame).
ID, PREDICTION, GOLD_LABEL, GOLD_TEXT = "id", "prediction", "label", "reference"


def predict_run(run_dir: Path, input: Path, output: Path, overrides: list[str] | None = None) -> Path:
    """Predict `input` with the run's final model; returns the output path."""
    from tunelab.training.callbacks import console

    check_output_path(output, input)
    run, cfg = run_config(run_dir, overrides or [])
    frame = read_input(cfg, input, split="predict")  # a bad input fails before the model loads (seconds)
    cfg, task, model, tokenizer, plan = load_trained_run(run, cfg)
    prediction = predict_frame(task, model, tokenizer, frame, cfg, plan)
    out = prediction_frame(prediction, cfg.inference.id_column, with_probs=output.suffix.lower() in (".jsonl", ".json"))
    write_frame(submission_columns(out, cfg), output)
    console.print(f"wrote {len(out)} predictions to {output}")
    return output


def predict_frame(
    task: Any, model: Any, tokenizer: Any, frame: pd.DataFrame, cfg: Config, plan: RuntimePlan
) -> Prediction:
    """The one prediction path for a validated frame (`tunelab predict` and `tunelab serve` share it)."""
    if cfg.inference.tta.enabled:  # test-time augmentation (views / decodes), see inference/tta.py
        from tunelab.inference.tta import tta_predict

        prediction, _ = tta_predict(task, model, tokenizer, frame, cfg, plan)
        return prediction
    return task.predict(model, tokenizer, frame, cfg, plan)


def load_trained(
    run_dir: Path, overrides: list[str], model_dir: Path | None = None
) -> tuple[Config, Any, Any, Any, RuntimePlan]:
    """(config with overrides, task, final model ready for inference, tokenizer, runtime plan).

    `model_dir` replaces the run's model/ (e.g. the directory `tunelab export --merge` wrote).
    """
    run, cfg = run_config(run_dir, overrides)
    return load_trained_run(run, cfg, model_dir)


def run_config(run_dir: Path, overrides: list[str]) -> tuple[Any, Config]:
    """(the run, its config with `--set` overrides) and a check that its model/ exists: cheap, no
    model loaded, so a wrong run directory or input is reported before the slow part."""
    from tunelab.config.loader import apply_override, validate_config
    from tunelab.runs import CONFIG, final_model_dir, load_run

    run = load_run(run_dir)
    cfg = run.config
    if overrides:
        raw = cfg.model_dump(mode="json")
        for item in overrides:
            apply_override(raw, item)
        cfg = validate_config(raw, source=str(run.path / CONFIG))
    final_model_dir(run.path)
    return run, cfg


def load_trained_run(run: Any, cfg: Config, model_dir: Path | None = None) -> tuple[Config, Any, Any, Any, RuntimePlan]:
    """`load_trained` for a run opened by `run_config`: the slow part (plan, task, model)."""
    from tunelab.runtime.plan import apply_global_settings, decide_plan
    from tunelab.tasks.base import task_from_config

    model_dir = resolve_model_dir(run.path, model_dir)
    plan = decide_plan(cfg)
    apply_global_settings(plan)
    task = task_from_config(cfg, run.label_names)
    tokenizer, model = task_model(task, cfg, plan, model_dir)
    return cfg, task, model, tokenizer, plan


def resolve_model_dir(run_dir: Path, model_dir: Path | None) -> Path:
    """The run's model/ directory, or `model_dir` (an export) when given; refused if not a model."""
    from tunelab.runs import final_model_dir

    if model_dir is None:
        return final_model_dir(run_dir)
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file() and not (model_dir / "adapter_config.json").is_file():
        raise ConfigError(
            f"{model_dir}: not a model directory (no config.json or adapter_config.json)",
            hint="pass the directory written by `tunelab export` (or leave the option out to use RUN_DIR/model)",
        )
    return model_dir


def task_model(task: Any, cfg: Config, plan: RuntimePlan, model_dir: Path) -> tuple[Any, Any]:
    """Tokenizer + model from a run's model/ directory, through the task's own loader if it has one."""
    if hasattr(task, "load_trained"):
        return task.load_trained(cfg, plan, model_dir)
    from tunelab.models.tokenizer import load_tokenizer

    local = cfg.model_copy(
        update={"model": cfg.model.model_copy(update={"name_or_path": str(model_dir), "revision": None})}
    )
    tokenizer = load_tokenizer(local)
    return tokenizer, task.build_model(local, plan, tokenizer)


def read_input(cfg: Config, path: Path, split: str) -> pd.DataFrame:
    """Read + validate a file for prediction ("predict": no label needed) or scoring ("validation")."""
    from tunelab.data.readers import read_table
    from tunelab.data.roles import roles_for
    from tunelab.data.validate import validate_frame
    from tunelab.training.callbacks import console

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
        console.print(f"[yellow]data warning:[/] {warning}")
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
    is_class = cfg.task.type == "classification" or (cfg.task.type == "sft" and bool(cfg.task.label_set))
    return GOLD_LABEL if is_class else GOLD_TEXT


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
