"""`tunelab train`: one config -> a finished run directory.

plan -> run dir -> tokenizer -> data (validated, split) -> tokenized (cached) -> model ->
preflight -> trainer -> train -> final evaluation -> metrics.json -> model/ -> predictions ->
tracking. Each step is a small function; this module only orchestrates.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunelab import runs, ui
from tunelab.errors import ConfigError, DataError, ModelError, PreflightError, RunDirError
from tunelab.io import atomic_write_json
from tunelab.pipeline.prepare import Prepared, prepare

if TYPE_CHECKING:
    from tunelab.config.schema import Config
    from tunelab.runtime.plan import RuntimePlan


def train_from_config(
    cfg: Config,
    resume: bool = False,
    run_dir: Path | None = None,
    skip_doctor: bool = False,
    config_path: Path | None = None,
) -> Path:
    """Train as configured; returns the run directory."""
    from tunelab.models.lora import check_targets_from_config
    from tunelab.runtime.plan import plan_for_model
    from tunelab.safety.locks import run_lock
    from tunelab.tasks.base import build_seeded_model
    from tunelab.training import distributed

    plan = decide_and_print_plan(cfg)
    check_targets_from_config(cfg)  # before a run directory exists: a typo leaves nothing behind
    existed = run_dir is not None and run_dir.exists()
    # Under accelerate launch / torchrun only the main process creates, locks and writes the run
    # directory; the others get its path (training/distributed.py).
    path, checkpoint = distributed.shared(lambda: resolve_run_dir(cfg, resume, run_dir))
    inputs_ok = False
    try:
        with distributed.on_main(run_lock(path)):
            if not resume and (path / runs.RUN_INFO).exists():  # another process got the lock first
                raise RunDirError(f"{path}: another run started in this directory first", hint="choose a new --run-dir")
            if distributed.is_main_process():
                runs.write_run_files(path, cfg, extra_info={"status": "running"})
                atomic_write_json(path / runs.PLAN, plan.to_dict())
            with distributed.main_process_first():  # one process fills the tokenization cache first
                prepared = prepare_data(cfg, path)
            # A task that places its model with a device_map offloads inside the run: <run_dir>/offload.
            model = build_seeded_model(prepared.task, cfg, plan, prepared.tokenizer, run_dir=path)
            inputs_ok = True
            loaded = plan_for_model(plan, model)  # a load-time attention fallback, recorded
            if loaded is not plan and distributed.is_main_process():
                atomic_write_json(path / runs.PLAN, loaded.to_dict())
            plan = loaded
            if distributed.is_main_process():
                record_model_info(path, cfg, model)
            run_preflight_step(cfg, plan, prepared, model, path, skip_doctor)
            metrics = train_and_finish(cfg, plan, prepared, model, path, checkpoint, config_path)
    except (ConfigError, DataError, ModelError):
        # Bad data or a bad model path in a fresh run: leave no half run directory behind.
        if not resume and not inputs_ok and distributed.is_main_process():
            discard_run_dir(path, keep_dir=existed)
        raise
    if distributed.is_main_process():
        print_where(path, metrics, prepared.task)
    return path


def discard_run_dir(path: Path, keep_dir: bool) -> None:
    """Remove what a fresh run wrote before its input was rejected (the dir too, unless it pre-existed)."""
    import shutil

    if not keep_dir:
        shutil.rmtree(path, ignore_errors=True)
        return
    for child in path.iterdir():
        shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)


def decide_and_print_plan(cfg: Config) -> RuntimePlan:
    from tunelab.runtime.plan import apply_global_settings, decide_plan

    plan = decide_plan(cfg)
    ui.err().print(f"[bold]runtime plan[/]: {plan.summary()}")
    ui.err().print(f"  weights {plan.weight_dtype}: {plan.weight_dtype_reason}")
    for note in plan.notes:
        ui.err().print(f"  {note}")
    apply_global_settings(plan)
    return plan


def resolve_run_dir(cfg: Config, resume: bool, run_dir: Path | None) -> tuple[Path, Path | None]:
    """(run directory, checkpoint to resume from or None)."""
    from tunelab.safety.locks import run_lock
    from tunelab.training.checkpointing import clean_staging, find_resumable_checkpoint, rewind_history

    if not resume:
        if run_dir is None:
            return runs.new_run_dir(cfg), None
        if run_dir.exists() and any(run_dir.iterdir()):
            raise RunDirError(
                f"{run_dir}: run directory is not empty", hint="add --resume to continue it, or choose a new --run-dir"
            )
        run_dir.mkdir(parents=True, exist_ok=True)
        return run_dir, None
    path = run_dir or runs.latest_run_dir(cfg)
    if path is None or not path.is_dir():
        where = run_dir or Path(cfg.output_dir)
        raise RunDirError(
            f"{where}: no run of {cfg.name!r} to resume", hint="train once without --resume, or pass --run-dir"
        )
    with run_lock(path):  # never clean up the staging dir of a live process
        clean_staging(path)
        checkpoint = find_resumable_checkpoint(path)
        rewind_history(path / runs.HISTORY, checkpoint)  # steps after the checkpoint are logged again
    ui.err().print(
        f"resuming {path}"
        + (f" from {checkpoint.name}" if checkpoint else " (no checkpoint yet: starting from step 0)")
    )
    return path, checkpoint


def prepare_data(cfg: Config, run_dir: Path) -> Prepared:
    """The one prepare path (pipeline/prepare.py) for training: train + validation tokenized, the
    manifest and the length profile written into the run directory."""
    from tunelab.data.splits import load_splits, save_manifest
    from tunelab.data.tokenize import save_length_profile
    from tunelab.training import distributed

    splits = load_splits(cfg)
    for warning in splits.warnings:
        ui.err().print(f"[yellow]data warning:[/] {warning}")
    if distributed.is_main_process():
        save_manifest(splits, run_dir / runs.MANIFEST)
    prepared = prepare(cfg, splits=splits)
    for name, stats in prepared.stats.items():
        ui.err().print(
            f"{name}: {stats['rows']} rows, tokens mean {stats['mean']:.1f} p50 {stats['p50']:.0f} "
            f"p90 {stats['p90']:.0f} p99 {stats['p99']:.0f} max {stats['max']}, "
            f"truncated {100 * stats['truncation_rate']:.1f}% at max_length {cfg.data.max_length}"
        )
    save_length_profile(run_dir, prepared.datasets, prepared.stats, cfg.data.max_length)
    return prepared


def record_model_info(run_dir: Path, cfg: Config, model: Any) -> None:
    """Parameter counts (read by experiment summaries) and library versions in run.json."""
    from tunelab.runtime.versions import library_versions

    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    runs.write_run_files(
        run_dir,
        cfg,
        extra_info={
            "num_parameters": total,
            "trainable_parameters": trainable,
            "model_type": getattr(model.config, "model_type", None),
            "versions": library_versions(),  # `tunelab diff` compares them
        },
    )


def run_preflight_step(
    cfg: Config, plan: RuntimePlan, prepared: Prepared, model: Any, run_dir: Path, skip_doctor: bool
) -> None:
    """The doctor's preflight checks; stops on error findings unless --skip-doctor."""
    if skip_doctor or not cfg.doctor.enabled:
        ui.err().print("preflight: skipped (--skip-doctor / doctor.enabled: false)")
        return
    from tunelab.diagnostics.findings import errors, sort_findings, write_findings
    from tunelab.diagnostics.preflight import run_preflight
    from tunelab.pipeline.doctor import training_collator

    collator = training_collator(cfg, plan, prepared.task, model, prepared.tokenizer)
    findings = run_preflight(
        cfg=cfg,
        plan=plan,
        task=prepared.task,
        model=model,
        tokenizer=prepared.tokenizer,
        train_dataset=prepared.datasets["train"],
        eval_dataset=prepared.datasets.get("validation"),
        manifest=prepared.splits.manifest,
        collate_fn=collator,
    )
    from tunelab.training import distributed

    if distributed.is_main_process():  # every process checks (and stops alike); one writes
        write_findings(run_dir / runs.PREFLIGHT, findings)
    for f in sort_findings(findings):
        # Findings taken from the data manifest were printed as "data warning" lines already.
        if f.severity != "info" and (f.evidence or {}).get("source") != "data manifest":
            ui.err().print(
                f"[{'red' if f.severity == 'error' else 'yellow'}]preflight {f.severity}[/] {f.id}: {f.title}"
                + (f" (fix: {f.fix})" if f.fix else "")
            )
    bad = errors(findings)
    warned = sum(f.severity == "warning" for f in findings)
    ui.err().print(f"preflight: {len(findings)} findings, {len(bad)} errors, {warned} warnings ({runs.PREFLIGHT})")
    if bad:
        first = bad[0]
        raise PreflightError(
            f"preflight found {len(bad)} error(s); first: {first.id}: {first.title}",
            hint=(first.fix or "see preflight.json") + "; or run with --skip-doctor",
        )


def train_and_finish(
    cfg: Config,
    plan: RuntimePlan,
    prepared: Prepared,
    model: Any,
    run_dir: Path,
    checkpoint: Path | None,
    config_path: Path | None,
) -> dict[str, Any]:
    """Train (resuming when asked), then evaluate, save and predict; tracked start to end."""
    from tunelab.safety.secrets import redact
    from tunelab.training import distributed
    from tunelab.training.checkpointing import InterruptCallback, raise_if_interrupted
    from tunelab.training.finish import finish_run
    from tunelab.training.oom import train_with_oom_retry
    from tunelab.training.tracking import NullTracker, start_tracker

    info = runs.load_run(run_dir).info
    # One tracked run per training, not one per process.
    tracker = (
        start_tracker(cfg, run_dir, run_id=info.get("mlflow_run_id"))
        if distributed.is_main_process()
        else NullTracker()
    )
    if getattr(tracker, "run_id", None):
        runs.write_run_files(
            run_dir, cfg, extra_info={"mlflow_run_id": tracker.run_id, "mlflow_uri": redact(tracker.uri)}
        )
    interrupt = InterruptCallback()
    try:
        trainer = prepared.task.build_trainer(
            cfg=cfg,
            plan=plan,
            model=model,
            tokenizer=prepared.tokenizer,
            train_dataset=prepared.datasets["train"],
            eval_dataset=prepared.datasets.get("validation"),
            output_dir=run_dir / runs.CHECKPOINTS,
            history_path=run_dir / runs.HISTORY,
            tracker=tracker,
            callbacks=[interrupt],
        )
        output = train_with_oom_retry(trainer, str(checkpoint) if checkpoint else None, run_dir, ui.err())
        raise_if_interrupted(interrupt, run_dir, config_path)
        metrics = finish_run(cfg, plan, prepared, trainer, run_dir, tracker, dict(output.metrics))
    except BaseException:
        tracker.end("FAILED" if not interrupt.requested else "KILLED")
        raise
    tracker.end("FINISHED")
    return metrics


def print_where(run_dir: Path, metrics: dict[str, Any], task: Any) -> None:
    primary = metrics.get("validation", {}).get(task.primary_metric)
    if primary is not None:
        ui.err().print(f"[bold green]done[/]: validation {task.primary_metric} = {primary:.4f}")
    ui.err().print(f"run directory: {run_dir}")
    ui.err().print(f"metrics:       {run_dir / runs.METRICS}")
    ui.err().print(f"model:         {run_dir / runs.MODEL}")
    pred_dir = run_dir / runs.PREDICTIONS
    if pred_dir.is_dir():
        for p in sorted(pred_dir.iterdir()):
            if not p.name.startswith("."):
                ui.err().print(f"predictions:   {p}")
