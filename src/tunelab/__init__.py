"""tunelab: one YAML file drives a whole fine-tuning job, checked at every step.

The Python API does what the `tunelab` command does, with the same checks and messages:

    import tunelab

    cfg = tunelab.load_config("examples/classification.yaml", {"training.num_train_epochs": 1})
    findings = tunelab.doctor(cfg)          # preflight checks; findings.ok is the verdict
    run = tunelab.train(cfg)                # -> Run (a run directory)
    run.metrics["validation"]["macro_f1"]
    preds = run.predict(frame_or_path)      # DataFrame, in input order
    scores = run.evaluate("labelled.csv")   # dict of metrics
    run = tunelab.Run.open("runs/20260101T000000Z_intents-minilm")

Problems with the input raise `TunelabError` subclasses (`ConfigError`, `DataError`, ...) whose
`message` names the file, row, column or key and whose `hint` says what to do; nothing exits the
interpreter. Only the names in `__all__` are public; modules below are internal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tunelab.errors import (
    ConfigError,
    DataError,
    DeviceError,
    ModelError,
    PreflightError,
    ResourceError,
    RunDirError,
    TunelabError,
)
from tunelab.version import __version__

if TYPE_CHECKING:
    from tunelab.api import (
        DataSplits,
        Experiment,
        Findings,
        Run,
        baseline,
        benchmark,
        compare,
        doctor,
        doctor_experiment,
        ensemble,
        experiment,
        fix_text,
        load_config,
        prepare,
        report,
        schema,
        train,
        validate,
    )
    from tunelab.config.schema import Config
    from tunelab.diagnostics.findings import Finding

# Resolved on first use (PEP 562): `import tunelab` must stay instant for `tunelab --help`, and
# the API pulls in pydantic and, per call, torch.
_LAZY = {
    "Config": "tunelab.config.schema",
    "Finding": "tunelab.diagnostics.findings",
    **{
        name: "tunelab.api"
        for name in (
            "DataSplits",
            "Experiment",
            "Findings",
            "Run",
            "baseline",
            "benchmark",
            "compare",
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
        )
    },
}

__all__ = [
    "Config",
    "ConfigError",
    "DataError",
    "DataSplits",
    "DeviceError",
    "Experiment",
    "Finding",
    "Findings",
    "ModelError",
    "PreflightError",
    "ResourceError",
    "Run",
    "RunDirError",
    "TunelabError",
    "__version__",
    "baseline",
    "benchmark",
    "compare",
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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tunelab' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
