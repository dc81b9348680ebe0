"""`tunelab experiment SPEC`: variants x folds, each its own `tunelab train` process.

Scheduling is deliberately simple (a thread pool of `max_parallel` workers, each holding one GPU
from `gpus` while its child runs). Spreading over machines is left to existing launchers (job
arrays, one `tunelab train` per node): see the README.
"""

from __future__ import annotations

import copy
import difflib
import queue
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunelab import ui
from tunelab.config.loader import apply_override, dump_config, validate_config
from tunelab.errors import ConfigError, TunelabError
from tunelab.experiments.process import RunOutcome, explaining_finding, run_child, train_argv
from tunelab.experiments.spec import ExperimentSpec, Variant, load_spec, variant_config
from tunelab.experiments.state import Ledger, now_utc
from tunelab.io import atomic_write_text

ArgvFn = Callable[[Path, Path], list[str]]


@dataclass
class PlannedRun:
    name: str
    variant: Variant
    fold: int | None


def plan_runs(spec: ExperimentSpec) -> list[PlannedRun]:
    if spec.kfold is None:
        return [PlannedRun(v.name, v, None) for v in spec.variants]
    return [PlannedRun(f"{v.name}-fold{f}", v, f) for v in spec.variants for f in range(spec.kfold.k)]


def experiment_dir(spec: ExperimentSpec) -> Path:
    return Path(spec.output_dir) / spec.name


def experiment_command(spec: Path, only: list[str], overrides: list[str], *, argv_fn: ArgvFn = train_argv) -> Path:
    """Run (or resume) an experiment; returns its directory. Failed runs never stop the others."""
    spec_obj, base = load_spec(spec)
    for item in overrides:  # a malformed --set fails here, once, not inside every run
        apply_override(copy.deepcopy(base), item)
    exp_dir = experiment_dir(spec_obj).resolve()
    planned = plan_runs(spec_obj)
    selected = select_runs(planned, only)
    ledger = Ledger.open(exp_dir, _header(spec_obj, Path(spec), base, overrides))
    todo = [r for r in selected if only or ledger.runs.get(r.name, {}).get("status") != "ok"]
    skipped = len(selected) - len(todo)
    ui.console().print(
        f"[bold]experiment[/] {spec_obj.name}: {len(planned)} runs, {len(todo)} to run"
        + (f", {skipped} already done (skipped)" if skipped else "")
        + f"  -> {exp_dir}"
    )
    execute(todo, spec_obj, base, overrides, ledger, argv_fn)
    finish(exp_dir, spec_obj, ledger)
    return exp_dir


def select_runs(planned: list[PlannedRun], only: list[str]) -> list[PlannedRun]:
    if not only:
        return planned
    known = {r.name for r in planned} | {r.variant.name for r in planned}
    for name in only:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            raise ConfigError(
                f"--only {name}: no such variant or run" + (f"; did you mean {close[0]}?" if close else ""),
                hint=f"known: {', '.join(sorted(known))}",
            )
    return [r for r in planned if r.name in only or r.variant.name in only]


def _header(spec: ExperimentSpec, spec_path: Path, base: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    task = (base.get("task") or {}).get("type", "classification") if isinstance(base.get("task"), dict) else None
    return {
        "name": spec.name,
        "spec": str(spec_path.resolve()),
        "task": task,
        "kfold": spec.kfold.model_dump() if spec.kfold else None,
        "variants": [v.model_dump() for v in spec.variants],
        "overrides": list(overrides),
    }


def execute(
    todo: list[PlannedRun],
    spec: ExperimentSpec,
    base: dict[str, Any],
    overrides: list[str],
    ledger: Ledger,
    argv_fn: ArgvFn,
) -> None:
    gpus: queue.Queue[int] = queue.Queue()
    for g in spec.gpus or []:
        gpus.put(g)
    workers = min(spec.max_parallel, len(spec.gpus)) if spec.gpus else spec.max_parallel

    def one(run: PlannedRun) -> dict[str, Any]:
        gpu = gpus.get() if spec.gpus else None
        try:
            return run_one(run, spec, base, overrides, ledger, argv_fn, gpu)
        except Exception as exc:  # a bug or disk error in the parent must not stop the other runs
            return ledger.update(
                run.name,
                status="failed",
                finished_utc=now_utc(),
                error={"class": type(exc).__name__, "message": str(exc)},
            )
        finally:
            if gpu is not None:
                gpus.put(gpu)

    with ui.progress(unit="runs") as progress, ThreadPoolExecutor(max(1, workers)) as pool:
        bar = progress.add_task("runs", total=len(todo))
        futures = [pool.submit(one, r) for r in todo]
        for fut in as_completed(futures):
            rec = fut.result()
            _print_outcome(ui.console(), rec)
            progress.advance(bar)


def run_one(
    run: PlannedRun,
    spec: ExperimentSpec,
    base: dict[str, Any],
    overrides: list[str],
    ledger: Ledger,
    argv_fn: ArgvFn,
    gpu: int | None,
) -> dict[str, Any]:
    exp_dir = ledger.exp_dir
    run_dir = exp_dir / "runs" / run.name
    attempts = ledger.runs.get(run.name, {}).get("attempts", 0) + 1
    _archive_previous(exp_dir, run_dir, run.name, attempts)
    raw = variant_config(base, run.variant, overrides, run.fold, spec.kfold, run.name, exp_dir / "runs")
    common = {
        "variant": run.variant.name,
        "fold": run.fold,
        "run_dir": f"runs/{run.name}",
        "attempts": attempts,
        "log": f"logs/{run.name}.log",
        "config": f"configs/{run.name}.yaml",
        "gpu": gpu,
        "model": (raw.get("model") or {}).get("name_or_path") if isinstance(raw.get("model"), dict) else None,
        "started_utc": now_utc(),
        "error": None,
        "doctor_finding": None,
        "log_tail": "",
    }
    try:
        cfg = validate_config(raw, source=f"variant {run.variant.name}")
    except ConfigError as exc:  # invalid variant: fails alone, no process needed
        atomic_write_text(exp_dir / "logs" / f"{run.name}.log", f"error: {exc.message}\nhint: {exc.hint}\n")
        return ledger.update(
            run.name,
            **{
                **common,
                "status": "failed",
                "finished_utc": now_utc(),
                "duration_s": 0.0,
                "returncode": None,
                "log_tail": f"error: {exc.message}",
                "error": {"class": "ConfigError", "message": exc.message, "hint": exc.hint or ""},
            },
        )
    cfg_path = exp_dir / "configs" / f"{run.name}.yaml"
    atomic_write_text(cfg_path, dump_config(cfg))
    ledger.update(run.name, **common, status="running")
    outcome: RunOutcome = run_child(
        argv_fn(cfg_path, run_dir),
        exp_dir / common["log"],
        exp_dir / "logs" / f".{run.name}.error.json",
        gpu,
        spec.timeout_s,
    )
    finding = explaining_finding(run_dir, outcome.error) if outcome.status == "failed" else None
    return ledger.update(
        run.name,
        status=outcome.status,
        finished_utc=now_utc(),
        duration_s=round(outcome.duration_s, 2),
        returncode=outcome.returncode,
        error=outcome.error,
        doctor_finding=finding,
        log_tail=outcome.log_tail if outcome.status == "failed" else "",
    )


def _archive_previous(exp_dir: Path, run_dir: Path, name: str, attempts: int) -> None:
    # A retry starts clean; the failed attempt's directory and log are kept for the post-mortem.
    if run_dir.exists():
        dest = exp_dir / "attempts" / f"{name}.{attempts - 1}"
        shutil.rmtree(dest, ignore_errors=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(run_dir), str(dest))
    log = exp_dir / "logs" / f"{name}.log"
    if log.exists():
        log.replace(log.with_name(f"{name}.{attempts - 1}.log"))


def _print_outcome(con: Any, rec: dict[str, Any]) -> None:
    if rec["status"] == "ok":
        con.print(f"[green]ok[/]     {rec['name']}  ({rec.get('duration_s', 0):.0f} s)")
        return
    err = rec.get("error") or {}
    con.print(f"[red]failed[/] {rec['name']}: {err.get('class')}: {err.get('message')}  (log: {rec.get('log')})")
    finding = rec.get("doctor_finding")
    if finding:
        con.print(f"       doctor: {finding.get('id')}: {finding.get('fix') or finding.get('message', '')}")


def finish(exp_dir: Path, spec: ExperimentSpec, ledger: Ledger) -> None:
    """After the runs: fold combination, TTA comparison, the summary table."""
    from tunelab.experiments.kfold import combine_folds
    from tunelab.experiments.summary import write_summary

    if spec.kfold is not None:
        try:
            ledger.set("kfold_results", combine_folds(exp_dir, ledger.data))
        except TunelabError as exc:
            ui.console().print(f"[yellow]k-fold combination skipped:[/] {exc}")
    if spec.tta.enabled:
        from tunelab.experiments.tta_compare import compare_all

        ledger.set("tta", compare_all(exp_dir, ledger.data, spec.timeout_s))
    write_summary(exp_dir, ledger.data, ui.console())
