"""Out of memory at a micro-batch: retry with half the micro-batch and twice the accumulation.

HF's `auto_find_batch_size` halves the batch but keeps gradient accumulation, so the effective
batch (and with it the learning-rate schedule and results) silently changes, and it restarts from
the initial state without knowing whether the weights already moved. Here the effective batch
stays the same (micro-batch x accumulation is constant), every retry is logged, the retry
continues from a consistent point (the same start when no optimizer step was taken, else an
emergency checkpoint at the current step), and when a micro-batch of 1 does not fit the run stops
with a ResourceError that names the numbers and the ways out.

Scope: a single process. Under DDP/FSDP one rank's OOM must be coordinated with the others; there
the error is raised as is (with the same plan as a hint).
"""

from __future__ import annotations

import contextlib
import gc
import logging
from pathlib import Path
from typing import Any

from tunelab.errors import ResourceError

log = logging.getLogger(__name__)


def is_oom(exc: BaseException) -> bool:
    """CUDA (or other accelerator) out-of-memory, whichever way torch reports it."""
    import torch

    if isinstance(exc, getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def smaller_micro_batch(batch: int, accumulation: int) -> tuple[int, int] | None:
    """(micro-batch, accumulation) with about half the micro-batch and the same product; None at 1."""
    if batch <= 1:
        return None
    # The largest divisor of `batch` not above half of it keeps batch x accumulation exact.
    new_batch = max(d for d in range(1, batch // 2 + 1) if batch % d == 0)
    return new_batch, accumulation * (batch // new_batch)


def _free_memory(trainer: Any) -> None:
    import torch

    with contextlib.suppress(Exception):  # freeing memory is best effort
        trainer.model.zero_grad(set_to_none=True)
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def give_up_plan(batch: int, accumulation: int, step: int, device_note: str = "") -> ResourceError:
    return ResourceError(
        f"out of memory at micro-batch {batch} (x{accumulation} accumulation) at step {step}{device_note}: "
        "even one sample per micro-batch does not fit",
        hint="lower data.max_length, set training.gradient_checkpointing: true, use LoRA (model.lora.enabled) "
        "or 4-bit (model.quantization.load_in_4bit), precision bf16, or a GPU with more memory",
    )


def _device_note() -> str:
    import torch

    if not torch.cuda.is_available():
        return ""
    free, total = torch.cuda.mem_get_info()
    return f" ({(total - free) / 2**30:.1f} of {total / 2**30:.1f} GiB in use)"


def _rng_snapshot() -> dict[str, Any]:
    import random

    import numpy as np
    import torch

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _rng_restore(state: dict[str, Any]) -> None:
    import random

    import numpy as np
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["cpu"])
    if "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


def train_with_oom_retry(trainer: Any, resume_from_checkpoint: str | None, run_dir: Path, console: Any = None) -> Any:
    """`trainer.train(...)`, retried on OOM with a smaller micro-batch at the same effective batch."""
    from tunelab.training.checkpointing import checkpoint_step, find_resumable_checkpoint

    resume = resume_from_checkpoint
    rng = _rng_snapshot()
    while True:
        try:
            return trainer.train(resume_from_checkpoint=resume)
        except Exception as exc:
            if not is_oom(exc):
                raise
            args = trainer.args
            batch, accum, step = (
                args.per_device_train_batch_size,
                args.gradient_accumulation_steps,
                trainer.state.global_step,
            )
            _free_memory(trainer)
            smaller = smaller_micro_batch(batch, accum)
            if smaller is None or args.world_size > 1:
                raise give_up_plan(batch, accum, step, _device_note()) from None
            if step > checkpoint_step(Path(resume) if resume else None):
                # Weights moved since this attempt started: save them (consistent at an optimizer-step
                # boundary; the partial accumulation is dropped) and continue from there.
                trainer._save_checkpoint(trainer.model, None)
                resume = str(find_resumable_checkpoint(run_dir))
            # The failed try drew random numbers (dataloader seeds): a retry from the same start
            # draws the same ones again, so it equals a run configured this way from the beginning.
            _rng_restore(rng)
            args.per_device_train_batch_size, args.gradient_accumulation_steps = smaller
            trainer._train_batch_size = args.train_batch_size
            message = (
                f"out of memory at micro-batch {batch} (step {step}); retrying with micro-batch {smaller[0]} x "
                f"{smaller[1]} accumulation (effective batch {batch * accum} unchanged)"
            )
            log.warning(message)
            if console is not None:
                console.print(f"[yellow]warning:[/] {message}")
