"""run_preflight: every check on a built model + tokenized data, before a single training step.

Called by `tunelab train` (pipeline/train.py writes the result to preflight.json and stops on any
error) and by `tunelab doctor`. Each check is a small function in a per-area module taking a
CheckContext; a check that crashes becomes a `doctor.check_failed` warning instead of blocking
training on a diagnostics bug.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tunelab.diagnostics.context import CheckContext
from tunelab.diagnostics.findings import Finding, warning

if TYPE_CHECKING:
    from tunelab.config.schema import Config
    from tunelab.runtime.plan import RuntimePlan

log = logging.getLogger(__name__)

Check = Callable[[CheckContext], list[Finding]]


def static_checks() -> list[Check]:
    """Checks that read config, plan, tokenizer and data only (no forward pass)."""
    from tunelab.diagnostics import (
        data_checks,
        labels,
        length_labels,
        lengths,
        memory,
        precision,
        schedule,
        tokenizer_checks,
    )

    return [
        precision.check_precision,
        memory.check_memory,
        tokenizer_checks.check_tokenizer,
        labels.check_labels,
        lengths.check_lengths,
        length_labels.check_length_labels,
        schedule.check_schedule,
        data_checks.check_data,
    ]


def model_checks() -> list[Check]:
    """Checks that run the model (a few eval batches, one backward, optionally an overfit)."""
    from tunelab.diagnostics import generation, model_probe, overfit, pipeline

    return [
        model_probe.check_initial_loss,
        model_probe.check_grad_norm,
        generation.check_generate_inputs,
        pipeline.check_pipeline,
        overfit.check_overfit,
    ]


def run_preflight(
    cfg: Config,
    plan: RuntimePlan | None,
    task: Any,
    model: Any,
    tokenizer: Any,
    train_dataset: Any,
    eval_dataset: Any = None,
    *,
    overfit: bool = False,
    manifest: dict[str, Any] | None = None,
    collate_fn: Any = None,
) -> list[Finding]:
    """All preflight findings for this setup, in check order. Never raises for a finding."""
    ctx = CheckContext(
        cfg=cfg,
        plan=plan,
        task=task,
        model=model,
        tokenizer=tokenizer,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        manifest=manifest,
        collate_fn=collate_fn,
        overfit=overfit,
    )
    return run_checks(ctx, static_checks() + model_checks())


def run_checks(ctx: CheckContext, checks: list[Check]) -> list[Finding]:
    findings: list[Finding] = []
    for check in checks:
        try:
            findings.extend(check(ctx))
        except Exception as exc:  # a diagnostics bug must not block training; it must show, though
            log.debug("check %s failed", check.__name__, exc_info=True)
            findings.append(
                warning(
                    "doctor.check_failed",
                    f"check {check.__module__.rsplit('.', 1)[-1]}.{check.__name__} could not run",
                    "report this with the traceback from `tunelab doctor CONFIG` (run with -v / logging DEBUG)",
                    error=f"{type(exc).__name__}: {str(exc)[:300]}",
                )
            )
    return findings
