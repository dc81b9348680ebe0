"""After `trainer.train()`: final evaluation, metrics.json, model/, predictions/, tracked artifacts.

The final evaluation predicts the validation frame through the task (length-ordered, results in
input order), so the same pass yields the metrics, the per-class report, the confusion matrix and
`predictions/validation.jsonl` (with probabilities, for ensembling). Everything is written
atomically; model/ appears only once complete.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunelab import runs
from tunelab.io import atomic_write_json

if TYPE_CHECKING:
    from tunelab.config.schema import Config
    from tunelab.runtime.plan import RuntimePlan

LABELS_FILE = "labels.json"


def finish_run(
    cfg: Config,
    plan: RuntimePlan,
    prepared: Any,
    trainer: Any,
    run_dir: Path,
    tracker: Any,
    train_metrics: dict[str, Any],
) -> dict[str, Any]:
    """Evaluate, save and predict; returns what was written to metrics.json."""
    task, splits = prepared.task, prepared.splits
    metrics: dict[str, Any] = {
        "primary_metric": task.primary_metric,
        "train": _scalars(train_metrics),
        "best_checkpoint": _relative(trainer.state.best_model_checkpoint, run_dir),
    }
    model = trainer.model
    if splits.validation is not None and len(splits.validation):
        report = evaluate_frame(cfg, plan, task, model, prepared.tokenizer, splits.validation, run_dir, "validation")
        metrics["validation"] = _scalars(report)
        if "per_class" in report:
            metrics["validation_per_class"] = report["per_class"]
    if trainer.is_world_process_zero():
        atomic_write_json(run_dir / runs.METRICS, metrics)
    save_final_model(trainer, prepared.tokenizer, task, run_dir)
    if splits.test is not None and len(splits.test):
        test_scores = predict_test(cfg, plan, task, model, prepared.tokenizer, splits.test, run_dir)
        if test_scores is not None:
            metrics["test"] = test_scores
            if trainer.is_world_process_zero():
                atomic_write_json(run_dir / runs.METRICS, metrics)
    if trainer.is_world_process_zero():
        _record(run_dir, cfg, train_metrics)
        _track(tracker, run_dir, metrics)
    return metrics


def evaluate_frame(
    cfg: Config, plan: RuntimePlan, task: Any, model: Any, tokenizer: Any, frame: Any, run_dir: Path, split: str
) -> dict[str, Any]:
    """Predict + score one labelled split; writes predictions/<split>.jsonl and the confusion matrix."""
    prediction = predict_split(cfg, plan, task, model, tokenizer, frame, run_dir, split, with_gold=True)
    report = task.score(prediction, frame)
    from tunelab.training.distributed import is_main_process

    if is_main_process():
        save_report_files(report, run_dir, split)
    return report


def predict_test(
    cfg: Config, plan: RuntimePlan, task: Any, model: Any, tokenizer: Any, frame: Any, run_dir: Path
) -> dict[str, Any] | None:
    """Predict data.test_file; score it too when every row has its answer (a labelled test file)."""
    if not is_labelled(cfg, frame):
        predict_split(cfg, plan, task, model, tokenizer, frame, run_dir, "test")
        return None
    from tunelab.errors import TunelabError

    try:
        return _scalars(evaluate_frame(cfg, plan, task, model, tokenizer, frame, run_dir, "test"))
    except TunelabError as exc:
        # The model is saved by now: a test label the run cannot score costs the score, not the run.
        from tunelab import ui

        ui.warn(f"{cfg.data.test_file}: test predictions written but not scored: {exc}")
        return None


def is_labelled(cfg: Config, frame: Any) -> bool:
    """Every answer column present and filled in every row (a partly labelled file is not scored)."""
    from tunelab.data.roles import target_columns

    for col in target_columns(cfg.task):
        if col not in frame.columns:
            return False
        values = frame[col]
        if values.isna().any() or values.astype(str).str.strip().eq("").any():
            return False
    return True


def save_report_files(report: dict[str, Any], out_dir: Path, split: str) -> list[Path]:
    """Confusion matrix JSON + PNG (classification reports only); names carry the split."""
    if "confusion_matrix" not in report:
        return []
    from tunelab.evaluation.classification import save_confusion_matrix

    stem = "confusion_matrix" if split == "validation" else f"confusion_matrix_{split}"
    json_path, png_path = save_confusion_matrix(report, out_dir, stem)
    return [p for p in (json_path, png_path) if p is not None]


def predict_split(
    cfg: Config,
    plan: RuntimePlan,
    task: Any,
    model: Any,
    tokenizer: Any,
    frame: Any,
    run_dir: Path,
    split: str,
    with_gold: bool = False,
) -> Any:
    """Task predictions for a frame, written to predictions/<split>.jsonl (ids, columns, gold, probs)."""
    from tunelab.data.roles import target_columns
    from tunelab.inference.predict import run_predictions_frame, write_frame
    from tunelab.training.distributed import is_main_process

    prediction = task.predict(model, tokenizer, frame, cfg, plan)
    if not is_main_process():
        return prediction  # every process predicts alike (DDP); the main process writes
    gold_col = target_columns(cfg.task)[0]
    gold = frame[gold_col].tolist() if with_gold and gold_col in frame.columns else None
    out = run_predictions_frame(prediction, cfg, gold)
    write_frame(out, run_dir / runs.PREDICTIONS / f"{split}.jsonl")
    return prediction


def save_final_model(trainer: Any, tokenizer: Any, task: Any, run_dir: Path) -> Path:
    """model/ = weights + config (with the label map) + tokenizer + labels.json, published atomically.

    Every process calls `save_model` (FSDP/DeepSpeed gather weights collectively); only the main
    process writes and renames.
    """
    import shutil

    from tunelab.safety.disk import ensure_free_space

    final = run_dir / runs.MODEL
    staging = run_dir / f".{runs.MODEL}.staging"
    if trainer.is_world_process_zero():
        shutil.rmtree(staging, ignore_errors=True)
        # Hours of training end here: fail with a clear line (checkpoints intact) rather than a
        # half-written model/ when the disk cannot hold the weights.
        weights = sum(p.numel() * p.element_size() for p in trainer.model.parameters())
        ensure_free_space(run_dir, weights, "the final model")
    trainer.save_model(str(staging))
    if trainer.is_world_process_zero():
        _drop_library_extras(staging)
        tokenizer.save_pretrained(str(staging))
        labels = task.label_names
        if labels:
            (staging / LABELS_FILE).write_text(
                json.dumps({"label_names": labels}, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
            )
        _publish_dir(staging, final)
    trainer.accelerator.wait_for_everyone()
    return final


# What the libraries add to a saved model that model/ should not carry: the Trainer's pickled
# TrainingArguments (a pickle in a directory we otherwise keep pickle-free; config.yaml holds the
# settings) and peft's model-card template (a README of placeholders, "[More Information Needed]").
_LIBRARY_EXTRAS = ("training_args.bin", "README.md")


def _drop_library_extras(model_dir: Path) -> None:
    for name in _LIBRARY_EXTRAS:
        (model_dir / name).unlink(missing_ok=True)


def _publish_dir(staging: Path, final: Path) -> None:
    from tunelab.io import atomic_dir

    # atomic_dir fsyncs every file and swaps the directory in only when it is complete.
    with atomic_dir(final) as tmp:
        for item in staging.iterdir():
            item.rename(tmp / item.name)
    staging.rmdir()


def _record(run_dir: Path, cfg: Config, train_metrics: dict[str, Any]) -> None:
    runs.write_run_files(
        run_dir,
        cfg,
        extra_info={
            "status": "finished",
            "train_runtime_s": train_metrics.get("train_runtime"),
            "samples_per_second": train_metrics.get("train_samples_per_second"),
            "peak_memory_mb": _peak_memory_mb(),
        },
    )


def _track(tracker: Any, run_dir: Path, metrics: dict[str, Any]) -> None:
    final = {f"final_{split}_{k}": v for split in ("validation", "test") for k, v in metrics.get(split, {}).items()}
    if final:
        tracker.log_metrics(final)
    for name in (
        runs.CONFIG,
        runs.METRICS,
        runs.MANIFEST,
        runs.PLAN,
        runs.PREFLIGHT,
        runs.HISTORY,
        "confusion_matrix.png",
        "confusion_matrix.json",
    ):
        tracker.log_artifact(run_dir / name)


def _peak_memory_mb() -> float | None:
    import torch

    if torch.cuda.is_available():
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    from tunelab.runtime.memory import peak_rss_bytes

    return round(peak_rss_bytes() / 2**20, 1)


def _scalars(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _relative(path: str | None, run_dir: Path) -> str | None:
    if not path:
        return None
    try:
        return str(Path(path).resolve().relative_to(run_dir.resolve()))
    except ValueError:
        return path
