"""`tunelab doctor EXPERIMENT.yaml`: doctor every variant of an experiment on its resolved config.

An experiment file (`base` + `variants`, examples/experiment.yaml) is not a run config. Each
variant's config is resolved exactly as `tunelab experiment` resolves it (experiments/spec.py:
base, then `--set`, then the variant's overrides), and doctor runs on it. Folds change only the
split, so a k-fold experiment is checked on fold 0. A variant whose config does not validate gets
a `config.invalid` error of its own; the others are still checked. Exit 1 when any variant has an
error finding, so an experiment can be checked before it spends its GPU-hours.
"""

from __future__ import annotations

import contextlib
import copy
import sys
import textwrap
from pathlib import Path
from typing import Any

from tunelab.diagnostics.findings import Finding, error, findings_to_json, has_errors


def is_experiment_file(path: Path) -> bool:
    """An experiment spec has `base` and `variants`; a run config has neither (its schema forbids them)."""
    from tunelab.config.loader import read_yaml

    raw = read_yaml(path)
    return isinstance(raw, dict) and "variants" in raw and "base" in raw


def variant_configs(path: Path, overrides: list[str]) -> list[tuple[str, Any, Finding | None]]:
    """(variant name, validated Config or None, config.invalid finding or None) per variant."""
    from tunelab.config.loader import apply_override, validate_config
    from tunelab.errors import ConfigError
    from tunelab.experiments.spec import load_spec, variant_config

    spec, base = load_spec(path)
    for item in overrides:  # a malformed --set fails here, once, as in `tunelab experiment`
        apply_override(copy.deepcopy(base), item)
    runs_dir = Path(spec.output_dir) / spec.name / "runs"
    fold = 0 if spec.kfold is not None else None
    out: list[tuple[str, Any, Finding | None]] = []
    for variant in spec.variants:
        raw = variant_config(base, variant, overrides, fold, spec.kfold, variant.name, runs_dir)
        try:
            out.append((variant.name, validate_config(raw, source=f"variant {variant.name}"), None))
        except ConfigError as exc:
            out.append((variant.name, None, error("config.invalid", exc.message, exc.hint or "", variant=variant.name)))
    return out


def diagnose_experiment(
    path: Path, overrides: list[str], overfit: bool = False, quiet: bool = False
) -> dict[str, list[Finding]]:
    """Doctor each variant; unless `quiet`, print one table per variant as it is done, then a summary.

    With `quiet` nothing reaches stdout (stage lines go to stderr), so a caller can print a document there.
    """
    from tunelab.pipeline.doctor import diagnose, print_findings

    results: dict[str, list[Finding]] = {}
    sink = contextlib.redirect_stdout(sys.stderr) if quiet else contextlib.nullcontext()
    with sink:
        for name, cfg, invalid in variant_configs(path, overrides):
            _banner(f"variant {name}", quiet)
            results[name] = [invalid] if invalid is not None else diagnose(cfg, overfit=overfit, quiet=quiet)
            if not quiet:
                print_findings(results[name])
    if not quiet:
        print_summary(results)
    return results


def experiment_findings_json(results: dict[str, list[Finding]]) -> dict[str, Any]:
    """The `tunelab doctor EXPERIMENT --json` document: overall verdict and each variant's findings."""
    return {
        "ok": not any(has_errors(f) for f in results.values()),
        "variants": {name: findings_to_json(f) for name, f in results.items()},
    }


def _banner(text: str, quiet: bool) -> None:
    if quiet:
        return
    from tunelab import ui

    ui.console().rule(f"[bold]{text}")


def print_summary(results: dict[str, list[Finding]]) -> None:
    """One row per variant: error / warning counts and the first error (what to fix first)."""
    from rich.markup import escape
    from rich.table import Table

    from tunelab import ui

    table = Table(title="tunelab doctor: experiment variants", expand=True)
    for col in ("variant", "errors", "warnings", "first error"):
        table.add_column(col, overflow="fold")
    for name, findings in results.items():
        errs = [f for f in findings if f.severity == "error"]
        first = textwrap.shorten(f"{errs[0].id}: {errs[0].title}", 160, placeholder=" ...") if errs else ""
        table.add_row(name, str(len(errs)), str(sum(f.severity == "warning" for f in findings)), escape(first))
    ui.console().print(table)
