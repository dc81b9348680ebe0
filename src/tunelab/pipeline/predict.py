"""Loading a trained run for prediction (`tunelab predict` is `tunelab.Run.predict`).

Loading a run for inference lives here because it chooses the run's Task: its config (with
`--set` overrides), its task and its final model (`load_trained`, shared with `evaluate`, the
TTA measurement, the Python API and `serve`). The input is read and validated like training data
and predicted through inference/predict.py, so every caller gets the same answers.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunelab.errors import ConfigError

if TYPE_CHECKING:
    from tunelab.config.schema import Config
    from tunelab.runtime.plan import RuntimePlan


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
    tokenizer, model = task.load_trained(cfg, plan, model_dir)
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
