"""Trainer callbacks: `history.jsonl` per logging step and a rich progress bar with real throughput.

"Real" tokens/s counts non-padding tokens: the Trainer counts them for us
(`include_num_input_tokens_seen="non_padding"`, gathered over processes) and we turn the counter
into a rate between two logging steps. Samples/s is optimizer steps x effective batch size.
Both callbacks act on the main process only (multi-process runs would write one line per rank).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.progress import Progress, TextColumn
from transformers import TrainerCallback

from tunelab import ui
from tunelab.io import append_jsonl
from tunelab.training.step_stats import StepStats

# Keys of a Trainer log dict that are bookkeeping, not metrics.
_SKIP = {"epoch", "step", "total_flos", "num_input_tokens_seen"}


def effective_batch_size(args: Any) -> int:
    return int(args.per_device_train_batch_size * args.gradient_accumulation_steps * max(1, args.world_size))


class Throughput:
    """Rates between two consecutive observations of (step, tokens seen)."""

    def __init__(self) -> None:
        self.reset(0, 0)

    def reset(self, step: int, tokens: int) -> None:
        self.t0 = self.t_last = time.perf_counter()
        self.step_last, self.tokens_last = step, tokens
        self.step0, self.tokens0 = step, tokens

    def average(self, step: int, tokens: int, batch_size: int) -> tuple[float, float]:
        """Rates over the whole run since `reset` (what the finished bar shows)."""
        dt = max(time.perf_counter() - self.t0, 1e-9)
        return (step - self.step0) * batch_size / dt, (tokens - self.tokens0) / dt

    def update(self, step: int, tokens: int, batch_size: int) -> tuple[float, float]:
        now = time.perf_counter()
        dt = max(now - self.t_last, 1e-9)
        samples = (step - self.step_last) * batch_size / dt
        token_rate = (tokens - self.tokens_last) / dt
        self.t_last, self.step_last, self.tokens_last = now, step, tokens
        return samples, token_rate

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.t0


class HistoryCallback(TrainerCallback):
    """Append one JSON line per training log (and per evaluation) to `history.jsonl`.

    `sinks` receive `(metrics, step)` for every record (the MLflow tracker is one).
    """

    def __init__(
        self,
        path: str | Path,
        sinks: list[Callable[[dict[str, float], int], None]] | None = None,
        stats: StepStats | None = None,
        setup: dict[str, Any] | None = None,
    ):
        self.path = Path(path)
        self.sinks = list(sinks or [])
        self.rate = Throughput()
        self.stats = stats
        self.setup = dict(setup or {})

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.rate.reset(state.global_step, state.num_input_tokens_seen or 0)
        if state.is_world_process_zero and not self._has_setup():
            # What was decided at train time and is not in the config (e.g. `batching: auto` ->
            # grouped): `tunelab diff` compares runs on what actually ran. Once per run: a resumed
            # run keeps its first record, so its history equals an uninterrupted one.
            setup = {"effective_batch_size": effective_batch_size(args), "world_size": max(1, args.world_size)}
            append_jsonl(self.path, {"step": state.global_step, "kind": "setup", **setup, **self.setup})

    def _has_setup(self) -> bool:
        from tunelab.io import read_jsonl

        return self.path.is_file() and any(r.get("kind") == "setup" for r in read_jsonl(self.path))

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or not logs:
            return
        record: dict[str, Any] = {"step": state.global_step, "epoch": round(float(state.epoch or 0.0), 4)}
        if any(k.startswith("eval_") for k in logs):
            record["kind"] = "eval"
            record.update({k: v for k, v in logs.items() if k not in _SKIP and _number(v)})
        elif "loss" in logs:
            samples, tokens = self.rate.update(
                state.global_step, state.num_input_tokens_seen or 0, effective_batch_size(args)
            )
            record.update(
                kind="train",
                loss=logs.get("loss"),
                grad_norm=logs.get("grad_norm"),
                learning_rate=logs.get("learning_rate"),
                samples_per_s=round(samples, 3),
                tokens_per_s=round(tokens, 1),
                tokens_seen=state.num_input_tokens_seen,
            )
            record.update(self.stats.take() if self.stats else {})
        else:  # the end-of-training summary (train_runtime, train_loss ...)
            record["kind"] = "summary"
            record.update({k: v for k, v in logs.items() if k not in _SKIP and _number(v)})
            record.update(self.stats.totals() if self.stats else {})
        record["elapsed_s"] = round(self.rate.elapsed, 3)
        append_jsonl(self.path, record)
        metrics = {k: float(v) for k, v in record.items() if k not in ("step", "kind") and _number(v)}
        for sink in self.sinks:
            sink(metrics, state.global_step)


class RichProgressCallback(TrainerCallback):
    """Replaces HF's tqdm: steps, samples/s, real tokens/s, ETA; loss and eval lines above the bar."""

    def __init__(self) -> None:
        self.progress: Progress | None = None
        self.job: Any = None
        self.rate = Throughput()

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        self.progress = ui.progress(TextColumn("{task.fields[speed]}"), unit="steps")
        self.progress.start()
        self.job = self.progress.add_task("training", total=state.max_steps, completed=state.global_step, speed="")
        self.rate.reset(state.global_step, state.num_input_tokens_seen or 0)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.progress is None:
            return
        speed = None
        if time.perf_counter() - self.rate.t_last >= 1.0 or state.global_step == state.max_steps:
            samples, tokens = self.rate.update(
                state.global_step, state.num_input_tokens_seen or 0, effective_batch_size(args)
            )
            speed = f"{samples:.1f} samples/s {tokens:,.0f} tok/s"
        fields = {"speed": speed} if speed else {}
        self.progress.update(self.job, completed=state.global_step, **fields)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if self.progress is None or not logs:
            return
        shown = {
            k: v
            for k, v in logs.items()
            if k not in _SKIP and _number(v) and not k.endswith(("_runtime", "_per_second"))
        }
        if shown:
            text = " ".join(f"{k}={_fmt(v)}" for k, v in shown.items())
            self.progress.console.print(f"step {state.global_step} epoch {float(state.epoch or 0):.2f}: {text}")

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.progress is not None:
            # The finished bar states the run's average, not the last window's (one short last
            # window read 128 samples/s for a run that averaged 11).
            samples, tokens = self.rate.average(
                state.global_step, state.num_input_tokens_seen or 0, effective_batch_size(args)
            )
            speed = f"{samples:.1f} samples/s {tokens:,.0f} tok/s avg"
            self.progress.update(self.job, completed=state.global_step, speed=speed)
            self.progress.stop()
            self.progress = None


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))


def _fmt(v: float) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
