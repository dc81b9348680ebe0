"""Where a training step's time goes: waiting for data vs computing, and how much of it is padding.

`tunelab diff` explains why two runs differ in speed; these are the facts it needs and the
Trainer does not record:

- data-wait share: the Trainer fetches a step's batches (all accumulation micro-batches) *before*
  `on_step_begin`, so the gap between the last callback of the previous step (step end, log,
  evaluate, save) and the next `on_step_begin` is time spent waiting for the data loader;
- step time: `on_step_begin` -> `on_step_end` (forward, backward, optimizer);
- padding efficiency: real / computed tokens of the batches the model was trained on, counted by
  a forward pre-hook in the main process (collators may run in loader workers, where a counter
  would be lost). Only training-mode forwards count, so evaluation batches do not.

`StepStats.take()` returns the numbers since the previous call (one logging interval);
`totals()` those of the whole training session.
"""

from __future__ import annotations

import time
from typing import Any

from transformers import TrainerCallback


class _Window:
    def __init__(self) -> None:
        self.wait_s = self.step_s = 0.0
        self.steps = self.real = self.computed = 0

    def as_record(self) -> dict[str, float]:
        out: dict[str, float] = {}
        busy = self.wait_s + self.step_s
        if self.steps and busy > 0:
            out["data_wait_share"] = round(self.wait_s / busy, 4)
            out["step_time_s"] = round(self.step_s / self.steps, 5)
        if self.computed:
            out["padding_efficiency"] = round(self.real / self.computed, 4)
        return out


class StepStats(TrainerCallback):
    """Data wait, step time and padding efficiency, per logging interval and in total."""

    def __init__(self) -> None:
        self.window, self.total = _Window(), _Window()
        self._mark: float | None = None  # end of the previous step's bookkeeping
        self._begin: float | None = None
        self._hook: Any = None

    # -- timing -------------------------------------------------------------------------------
    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        self._mark = time.perf_counter()
        if model is not None and self._hook is None:
            self._hook = model.register_forward_pre_hook(self._count_tokens, with_kwargs=True)

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        now = time.perf_counter()
        if self._mark is not None:
            self._add(wait_s=now - self._mark)
        self._begin = now

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        now = time.perf_counter()
        if self._begin is not None:
            self._add(step_s=now - self._begin, steps=1)
        self._begin = None
        self._mark = now

    def _after_bookkeeping(self, *args: Any, **kwargs: Any) -> None:
        # Logging, evaluation and checkpointing run after on_step_end and before the next fetch:
        # restart the wait clock so their time is not counted as waiting for data.
        self._mark = time.perf_counter()

    on_log = on_evaluate = on_save = _after_bookkeeping

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    # -- tokens -------------------------------------------------------------------------------
    def _count_tokens(self, module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if not getattr(module, "training", False):
            return
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is None or not hasattr(ids, "numel"):
            return
        computed = int(ids.numel())
        mask = kwargs.get("attention_mask")
        # A packed row has no attention_mask and no padding; a 4-D mask is not a padding mask.
        real = int(mask.sum()) if mask is not None and getattr(mask, "dim", lambda: 0)() == 2 else computed
        self._add(real=real, computed=computed)

    # -- windows ------------------------------------------------------------------------------
    def _add(self, **delta: float) -> None:
        for window in (self.window, self.total):
            for key, value in delta.items():
                setattr(window, key, getattr(window, key) + value)

    def take(self) -> dict[str, float]:
        """Numbers since the previous `take()` (one logging interval), then start a new window."""
        record = self.window.as_record()
        self.window = _Window()
        return record

    def totals(self) -> dict[str, float]:
        return self.total.as_record()
