"""`experiment(spec) -> Experiment` and `ensemble(...)`: several variants x folds, then combined.

Each run of an experiment is its own `tunelab train` process (an out-of-memory or a crash ends
that run only), exactly as `tunelab experiment` runs it; this module only gives the result a
Python face.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    import pandas as pd

    from tunelab.api.run import Run

PathLike = Union[str, "os.PathLike[str]"]


class Experiment:
    """An experiment directory: the ledger (experiment.json), its runs, the ensemble and report."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        """The experiment directory (`<output_dir>/<name>/`)."""
        self.data = data
        """experiment.json: the spec's header and one record per run (status, duration, error)."""

    @classmethod
    def open(cls, path: PathLike) -> Experiment:
        """Open a directory written by `tunelab experiment` (raises `RunDirError` for anything else)."""
        from tunelab.experiments.state import load_experiment

        return cls(Path(path), load_experiment(Path(path)))

    @property
    def name(self) -> str:
        return str(self.data.get("name", self.path.name))

    @property
    def summary(self) -> pd.DataFrame:
        """One row per run: name, variant, fold, status, duration, error message."""
        import pandas as pd

        rows = []
        for rec in self.data["runs"].values():
            err = rec.get("error") or {}
            rows.append(
                {
                    "name": rec.get("name"),
                    "variant": rec.get("variant"),
                    "fold": rec.get("fold"),
                    "status": rec.get("status"),
                    "duration_s": rec.get("duration_s"),
                    "error": err.get("message"),
                }
            )
        return pd.DataFrame(rows)

    @property
    def runs(self) -> dict[str, Run]:
        """The runs that finished (`status: ok`), by name."""
        from tunelab.api.run import Run

        return {
            name: Run.open(self.path / rec["run_dir"])
            for name, rec in self.data["runs"].items()
            if rec.get("status") == "ok" and rec.get("run_dir")
        }

    def ensemble(self, method: str = "auto") -> dict[str, Any]:
        """Combine the successful variants (see `tunelab.ensemble`)."""
        return ensemble(self.path, method=method)

    def report(self) -> Path:
        """Write report.html and report.md for the whole experiment; returns the HTML path."""
        from tunelab.api.core import report

        return report(self.path)

    def __repr__(self) -> str:
        statuses = [r.get("status") for r in self.data["runs"].values()]
        return f"Experiment({str(self.path)!r}, ok={statuses.count('ok')}, failed={statuses.count('failed')})"


def experiment(spec: PathLike, *, only: Sequence[str] = (), overrides: Sequence[str] = ()) -> Experiment:
    """Run (or resume) an experiment spec: a base config, variants and optional folds.

    Runs already `ok` in the experiment directory are skipped; `only` runs just these variants or
    runs (e.g. to retry failures). `overrides` (`--set` strings) change the base config of every
    variant. A failed run never stops the others: see `Experiment.summary`.
    """
    from tunelab.experiments.runner import experiment_command

    exp_dir = experiment_command(Path(spec), only=list(only), overrides=list(overrides))
    return Experiment.open(exp_dir)


def ensemble(experiment: Experiment | PathLike, method: str = "auto") -> dict[str, Any]:
    """Ensemble an experiment's runs and compare with the best single model (`tunelab ensemble`).

    `method`: mean | weighted | vote | stacking (classification), consensus | best (generation),
    or auto (every method that applies; the best on validation is kept). Returns the report also
    written to `ensemble.json`.
    """
    from tunelab.experiments.ensemble import ensemble_command

    path = experiment.path if isinstance(experiment, Experiment) else Path(experiment)
    return ensemble_command(path, method=method)
