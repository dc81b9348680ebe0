"""What `tunelab train` needs to run under `accelerate launch` / `torchrun` on several processes.

Every process runs the same orchestration; only the main process (global rank 0) creates the run
directory, takes its lock and writes run files, manifests, trackers and predictions. The launcher
tells us the rank through the environment (RANK / WORLD_SIZE), so nothing here needs the process
group except `shared` and `main_process_first`, which start it themselves with torch.distributed
(gloo on CPU, nccl on CUDA). accelerate's state, created later by TrainingArguments, reuses an
initialised group. Not accelerate's PartialState here: it is a singleton, and creating it before
TrainingArguments would fix its settings (e.g. `cpu=True`) wrongly for the Trainer.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from tunelab.errors import TunelabError

T = TypeVar("T")


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


def shared(fn: Callable[[], T]) -> T:
    """Run `fn` on the main process only and hand its result (or its error) to every process."""
    if world_size() == 1:
        return fn()
    _init_group()
    if not is_main_process():
        return _receive_outcome()
    try:
        result = fn()
    except BaseException as exc:  # every process must fail the same way, not hang in a collective
        _broadcast([_failure(exc)])
        _leave_group()
        raise
    _broadcast([("ok", result)])
    return result


@contextlib.contextmanager
def main_process_first() -> Iterator[None]:
    """The main process runs the block first (e.g. filling the tokenization cache), then the others.

    The others wait for the main process's outcome, not for a bare barrier: when the block fails
    on the main process they raise its error at once instead of waiting at the barrier until the
    collective timeout (30 minutes on NCCL) while the launcher keeps the job alive.
    """
    if world_size() == 1:
        yield
        return
    _init_group()
    if not is_main_process():
        _receive_outcome()  # raises the main process's error, if it had one
        yield
        return
    try:
        yield
    except BaseException as exc:
        _broadcast([_failure(exc)])
        _leave_group()
        raise
    _broadcast([("ok", None)])


def _failure(exc: BaseException) -> tuple[Any, ...]:
    if isinstance(exc, TunelabError):
        return ("error", type(exc), exc.message, exc.hint)
    return ("error", TunelabError, f"the main process failed: {type(exc).__name__}: {exc}", None)


def _broadcast(box: list[Any]) -> None:
    import torch.distributed as dist

    dist.broadcast_object_list(box, src=0)


def _receive_outcome() -> Any:
    box: list[Any] = [None]
    _broadcast(box)
    if box[0][0] == "error":
        _, cls, message, hint = box[0]
        try:
            error = cls(message, hint)
        except TypeError:  # a subclass with its own signature
            error = TunelabError(message, hint)
        _leave_group()
        raise error
    return box[0][1]


def _leave_group() -> None:
    """After a failure was shared, no collective follows: tear the group down now, so the process
    exits with its error instead of aborting in gloo's teardown once the peers are gone."""
    import torch.distributed as dist

    with contextlib.suppress(Exception):
        if dist.is_initialized():
            dist.destroy_process_group()


def _init_group() -> None:
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return
    if torch.cuda.is_available():
        # Object collectives on nccl use the current device: one GPU per local rank, as accelerate does.
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend="nccl")
    else:
        dist.init_process_group(backend="gloo")


def on_main(cm: contextlib.AbstractContextManager) -> contextlib.AbstractContextManager:
    """`cm` on the main process, a no-op elsewhere (e.g. the run directory's lock)."""
    return cm if is_main_process() else contextlib.nullcontext()
