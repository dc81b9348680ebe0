"""The implementation of tunelab's public Python API; import it from `tunelab` instead.

The floor above experiments/reporting/bench and below the CLI: every CLI command calls one
function here, so Python and the terminal share one code path.
"""

from tunelab.api.core import (
    ConfigLike,
    DataSplits,
    Overrides,
    baseline,
    benchmark,
    compare,
    doctor,
    doctor_experiment,
    fix_text,
    load_config,
    prepare,
    report,
    schema,
    train,
    validate,
)
from tunelab.api.experiments import Experiment, ensemble, experiment
from tunelab.api.findings import Findings
from tunelab.api.run import FrameOrPath, Run

__all__ = [
    "ConfigLike",
    "DataSplits",
    "Experiment",
    "Findings",
    "FrameOrPath",
    "Overrides",
    "Run",
    "baseline",
    "compare",
    "benchmark",
    "doctor",
    "doctor_experiment",
    "fix_text",
    "ensemble",
    "experiment",
    "load_config",
    "prepare",
    "report",
    "schema",
    "train",
    "validate",
]
