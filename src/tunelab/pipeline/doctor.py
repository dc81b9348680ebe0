"""`tunelab doctor CONFIG`: build everything `tunelab train` builds, run every check, print a table.

Built the way `tunelab train` builds it (the one prepare path of pipeline/prepare.py, the
task's model, data.batching's collator) but without a run directory and without training.
Anything that would stop `train` with an exception (a DeviceError from the runtime plan, a bad
data file, an unloadable model) becomes an error finding here, so one doctor run reports all of
it. Exit code 1 on any error finding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tunelab import ui
from tunelab.diagnostics.context import CheckContext
from tunelab.diagnostics.findings import Finding, error, format_evidence, has_errors, sort_findings
from tunelab.errors import TunelabError
from tunelab.pipeline.prepare import Prepared, prepare

if TYPE_CHECKING:
    from tunelab.config.schema import Config
    from tunelab.protocols import Task


@dataclass
class Built(Prepared):
    """What doctor managed to build; `None` fields were not buildable (see the findings)."""

    model: Any = None
    collate_fn: Any = None

    @property
    def manifest(self) -> dict[str, Any] | None:
        return self.splits.manifest if self.splits is not None else None


def diagnose(cfg: Config, overfit: bool = False, quiet: bool = False) -> list[Finding]:
    """All findings for `cfg`; never raises for a user-input problem."""
    from tunelab.diagnostics import memory, precision, preflight

    say = _say(quiet)
    caps, found = _capabilities(cfg)
    found += _lora_targets(cfg)
    plan = None
    if caps is not None:
        plan, _ = precision.plan_or_findings(cfg, caps)
    say(f"runtime plan: {plan.summary() if plan else 'not decidable (see precision findings)'}")
    built, load_findings = build(cfg, plan, say)
    ctx = CheckContext(
        cfg=cfg,
        plan=plan,
        caps=caps,
        task=built.task,
        tokenizer=built.tokenizer,
        train_dataset=built.datasets.get("train"),
        eval_dataset=built.datasets.get("validation"),
        manifest=built.manifest,
        overfit=overfit,
    )
    # Memory first, from the architecture alone: a model that cannot fit is not built.
    mem = memory.check_memory(ctx) if caps is not None else []
    if plan is not None and built.task is not None and not has_errors(mem + load_findings):
        say("building the model")
        built.model, built.collate_fn, model_findings = _build_model(cfg, plan, built)
        load_findings += model_findings
    ctx.model, ctx.collate_fn = built.model, built.collate_fn
    checks = preflight.static_checks()
    if built.model is not None:
        say("running the model checks" + (" (with the overfit test)" if overfit else ""))
        checks += preflight.model_checks()
    else:
        checks = [c for c in checks if c is not memory.check_memory]
        load_findings += mem
    from tunelab.diagnostics.capacity import check_capacity

    return sort_findings(found + load_findings + preflight.run_checks(ctx, checks) + check_capacity(ctx))


def _say(quiet: bool) -> Any:
    return (lambda _msg: None) if quiet else (lambda msg: ui.err().print(f"[dim]doctor:[/] {msg}"))


def _lora_targets(cfg: Config) -> list[Finding]:
    from tunelab.models.lora import check_targets_from_config

    try:
        check_targets_from_config(cfg)
    except TunelabError as exc:
        return [error("model.lora_targets", exc.message, exc.hint or "")]
    return []


def _capabilities(cfg: Config) -> tuple[Any, list[Finding]]:
    from tunelab.errors import DeviceError
    from tunelab.runtime.plan import detect_capabilities

    try:
        return detect_capabilities(cfg.runtime.device), []
    except DeviceError as exc:
        return None, [error("precision.device", exc.message, exc.hint or "", requested_device=cfg.runtime.device)]


def build(cfg: Config, plan: Any, say: Any) -> tuple[Built, list[Finding]]:
    """Splits (+ manifest), task, tokenizer and tokenized splits; failures become findings."""
    built = Built()
    try:
        say("loading data")
        prepare(cfg, into=built)
    except TunelabError as exc:
        stage = "model.tokenizer" if built.task is not None and built.tokenizer is None else "data.load"
        return built, [error(stage, exc.message, exc.hint or "", error_type=type(exc).__name__)]
    return built, []


def _build_model(cfg: Config, plan: Any, built: Built) -> tuple[Any, Any, list[Finding]]:
    try:
        from tunelab.tasks.base import build_seeded_model

        model = build_seeded_model(built.task, cfg, plan, built.tokenizer)
    except TunelabError as exc:
        return None, None, [error("model.load", exc.message, exc.hint or "", error_type=type(exc).__name__)]
    try:
        collate = training_collator(cfg, plan, built.task, model, built.tokenizer)
    except TunelabError as exc:
        return model, None, [error("data.batching", exc.message, exc.hint or "")]
    return model, collate, []


def training_collator(cfg: Config, plan: Any, task: Task, model: Any, tokenizer: Any) -> Any:
    """The collator training will use: training/trainer.py's own choice of it."""
    from tunelab.training.trainer import batching_setup

    collator, _, _ = batching_setup(task, cfg, plan, model, tokenizer)
    return collator


_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


def print_findings(findings: list[Finding], file: Any = None) -> None:
    """id, severity, title, evidence, fix: a table on a terminal, one line per finding in a log
    file (ui.print_rows); then a one-line verdict."""
    from tunelab import ui
    from tunelab.diagnostics.capacity import CAPACITY_ID, print_capacity

    console = ui.console(file=file) if file is not None else ui.console()
    # The memory plan per device size is a table of its own, after the findings.
    tables = [f for f in findings if f.id == CAPACITY_ID]
    shown = [f for f in findings if f.id != CAPACITY_ID]
    rows = [[f.id, f.severity, f.title, format_evidence(f.evidence), f.fix] for f in shown]
    ui.print_rows(
        "tunelab doctor",
        ["id", "severity", "title", "evidence", "fix"],
        rows,
        console=console,
        styles=[_STYLE[f.severity] for f in shown],
    )
    for table in tables:
        print_capacity(table, console)
    n_err = sum(f.severity == "error" for f in findings)
    n_warn = sum(f.severity == "warning" for f in findings)
    verdict = "[bold red]NOT READY[/]" if n_err else "[bold green]ready to train[/]"
    console.print(f"{verdict}: {n_err} error(s), {n_warn} warning(s), {len(findings) - n_err - n_warn} info")
