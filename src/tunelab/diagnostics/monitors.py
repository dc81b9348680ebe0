"""Live training monitors: TrainerCallbacks that act on what they see, and log it.

- Non-finite gradients (a NaN/Inf loss always produces them) stop the run cleanly: the check runs
  in `on_pre_optimizer_step`, i.e. *before* the optimizer applies the poisoned update; the
  gradients are dropped so that step changes nothing, training stops, and no checkpoint is
  saved from then on. The last good checkpoint stays intact and the in-memory weights stay
  finite. (With an fp16 GradScaler an overflow step is normal -- the scaler skips it -- so only a
  run of them counts.)
- Grad-norm spikes (> k x running median) and a loss plateau (no new minimum for N logging
  steps) are warnings with evidence.
Every event goes to history.jsonl (`kind: "health"`), `health.json` (all findings so far, written
atomically), the console, and MLflow when a run is active. training/ attaches these through
`default_monitors(run_dir, cfg, plan)`; diagnostics never imports training.
"""

from __future__ import annotations

import math
import statistics
import sys
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback

from tunelab.diagnostics.findings import Finding, error, warning, write_findings
from tunelab.io import append_jsonl

if TYPE_CHECKING:
    from tunelab.config.schema import Config
    from tunelab.runtime.plan import RuntimePlan

HEALTH = "health.json"
HISTORY = "history.jsonl"  # same name as runs.HISTORY (runs imports config; keep this module light)
SPIKE_WINDOW = 50  # grad norms in the running median
SPIKE_MIN_HISTORY = 5
SCALER_OVERFLOW_PATIENCE = 20  # consecutive non-finite steps under an fp16 GradScaler before we call it broken
PLATEAU_REL = 1e-3  # a new loss minimum must beat the old by 0.1%


class HealthMonitor(TrainerCallback):
    def __init__(
        self,
        run_dir: str | Path | None,
        *,
        spike_factor: float = 10.0,
        plateau_logs: int = 20,
        grad_scaler: bool = False,
        echo: bool = True,
    ):
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.spike_factor = spike_factor
        self.plateau_logs = plateau_logs
        self.grad_scaler = grad_scaler
        self.echo = echo
        self.findings: list[Finding] = []
        self.tripped = False  # a non-finite step stopped the run
        self._overflows = 0
        self._norms: deque[float] = deque(maxlen=SPIKE_WINDOW)
        self._best: float | None = None
        self._since_best = 0
        self._last_loss: float | None = None

    # ------------------------------------------------------------------ non-finite guard
    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> Any:
        if model is None or self.tripped:
            return control
        bad = nonfinite_grads(model)
        if not bad:
            self._overflows = 0
            return control
        self._overflows += 1
        if self.grad_scaler and self._overflows < SCALER_OVERFLOW_PATIENCE:
            return control  # the GradScaler skips this step and lowers its scale: normal in fp16
        drop_grads(model)  # the optimizer's step now changes nothing: weights stay at the last good step
        self._trip(state, control, step=state.global_step + 1, params=bad[:5], n_params=len(bad), source="gradients")
        return control

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if self.tripped:  # never checkpoint after a poisoned step, whatever save_steps says
            control.should_save = False
            control.should_training_stop = True
        return control

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if self.tripped:
            control.should_save = False
        return control

    def _trip(self, state: Any, control: Any, **evidence: Any) -> None:
        self.tripped = True
        control.should_training_stop = True
        control.should_save = False
        evidence |= {"last_logged_loss": self._last_loss}
        self._emit(
            state,
            error(
                "monitor.nonfinite",
                f"non-finite {evidence.get('source', 'loss')} at step {evidence.get('step')}: training stopped, "
                "no checkpoint saved after it (the last good checkpoint is intact)",
                "run `tunelab doctor CONFIG` (loss.initial, grad.init_norm); lower training.learning_rate, keep max_grad_norm, "
                "prefer bf16 over fp16; resume from the last checkpoint with --resume",
                **evidence,
            ),
        )

    # ------------------------------------------------------------------ log-based monitors
    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        if not logs or "loss" not in logs or any(k.startswith("eval_") for k in logs):
            return control
        loss, norm = _num(logs.get("loss")), _num(logs.get("grad_norm"))
        step = state.global_step
        if not self.tripped and (
            (loss is not None and not math.isfinite(loss))
            or (norm is not None and not math.isfinite(norm) and not self.grad_scaler)
        ):
            self._trip(
                state,
                control,
                step=step,
                loss=loss,
                grad_norm=norm,
                source="loss" if loss is not None and not math.isfinite(loss) else "grad norm",
            )
            return control
        if norm is not None and math.isfinite(norm):
            self._spike(state, step, norm, loss)
        if loss is not None and math.isfinite(loss):
            self._plateau(state, step, loss)
            self._last_loss = loss
        return control

    def _spike(self, state: Any, step: int, norm: float, loss: float | None) -> None:
        if len(self._norms) >= SPIKE_MIN_HISTORY:
            median = statistics.median(self._norms)
            if median > 0 and norm > self.spike_factor * median:
                self._emit(
                    state,
                    warning(
                        "monitor.grad_spike",
                        f"grad norm {norm:.3g} at step {step} is {norm / median:.0f}x the running median {median:.3g}",
                        "if spikes repeat: lower training.learning_rate, check for bad "
                        "batches (very long or corrupt rows), keep max_grad_norm clipping on",
                        step=step,
                        grad_norm=norm,
                        running_median=median,
                        factor=self.spike_factor,
                        loss=loss,
                    ),
                )
        self._norms.append(norm)

    def _plateau(self, state: Any, step: int, loss: float) -> None:
        if self._best is None or loss < self._best - PLATEAU_REL * abs(self._best):
            self._best, self._since_best = loss, 0
            return
        self._since_best += 1
        if self._since_best >= self.plateau_logs:
            self._emit(
                state,
                warning(
                    "monitor.plateau",
                    f"loss has not improved for {self._since_best} logging steps "
                    f"(best {self._best:.4g}, now {loss:.4g})",
                    "check the lr schedule (schedule.*), try a higher learning rate or stop early",
                    step=step,
                    loss=loss,
                    best_loss=self._best,
                    logs_without_improvement=self._since_best,
                ),
            )
            self._since_best = 0

    # ------------------------------------------------------------------ output
    def _emit(self, state: Any, finding: Finding) -> None:
        self.findings.append(finding)
        if not getattr(state, "is_world_process_zero", True):
            return
        step = int(getattr(state, "global_step", 0))
        if self.run_dir is not None:
            append_jsonl(
                self.run_dir / HISTORY,
                {
                    "kind": "health",
                    "step": step,
                    "id": finding.id,
                    "severity": finding.severity,
                    "title": finding.title,
                    **finding.evidence,
                },
            )
            write_findings(self.run_dir / HEALTH, self.findings)
        _mlflow_metric(f"health.{finding.id.split('.', 1)[-1]}", 1.0, step)
        if self.echo:
            _print(finding)


def nonfinite_grads(model: Any) -> list[str]:
    """Names of parameters whose gradient has a NaN/Inf (agreed across processes)."""
    import torch

    named = [(n, p.grad) for n, p in model.named_parameters() if p.grad is not None]
    bad = [n for n, g in named if not bool(torch.isfinite(g).all())]
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        # Sharded grads (FSDP) can go bad on one rank only: every rank must stop together.
        flag = torch.tensor([1.0 if bad else 0.0], device=named[0][1].device if named else "cpu")
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        if flag.item() and not bad:
            bad = ["<another rank>"]
    return bad


def drop_grads(model: Any) -> None:
    """Optimizers skip parameters without a gradient: the pending step becomes a no-op."""
    for param in model.parameters():
        param.grad = None


def _num(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _mlflow_metric(name: str, value: float, step: int) -> None:
    if "mlflow" not in sys.modules:  # never import MLflow just to find there is no run
        return
    mlflow = sys.modules["mlflow"]
    try:
        if mlflow.active_run() is not None:
            mlflow.log_metric(name, value, step=step)
    except Exception:  # tracking must never take a training run down
        pass


def _print(finding: Finding) -> None:
    from rich.markup import escape

    from tunelab import ui
    from tunelab.diagnostics.findings import format_evidence

    color = {"error": "red", "warning": "yellow", "info": "dim"}[finding.severity]
    ui.err().print(
        f"[{color}]health {finding.severity}[/] {finding.id}: {escape(finding.title)}\n"
        f"  evidence: {escape(format_evidence(finding.evidence))}\n  fix: {escape(finding.fix)}"
    )


def default_monitors(run_dir: str | Path | None, cfg: Config, plan: RuntimePlan | None = None) -> list[TrainerCallback]:
    """The monitors training attaches to every run."""
    scaler = plan.grad_scaler if plan is not None else cfg.runtime.precision == "fp16"
    return [
        HealthMonitor(
            run_dir, spike_factor=cfg.doctor.grad_spike_factor, plateau_logs=cfg.doctor.plateau_logs, grad_scaler=scaler
        )
    ]
