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
    """Run `fn` on the main process only and hand its result (or its TunelabError) to every process."""
    if world_size() == 1:
        return fn()
    import torch.distributed as dist

    _init_group()
    box: list[Any] = [None]
    if is_main_process():
        try:
            box[0] = ("ok", fn())
        except TunelabError as exc:  # every process must fail the same way, not hang in a collective
            box[0] = ("error", type(exc), exc.message, exc.hint)
    dist.broadcast_object_list(box, src=0)
    if box[0][0] == "error":
        _, cls, message, hint = box[0]
        raise cls(message, hint)
    return box[0][1]


@contextlib.contextmanager
def main_process_first() -> Iterator[None]:
    """The main process runs the block first (e.g. filling the tokenization cache), then the others."""
    if world_size() == 1:
        yield
        return
    import torch.distributed as dist

    _init_group()
    if not is_main_process():
        dist.barrier()  # wait for the main process to finish the block
    yield
    if is_main_process():
        dist.barrier()  # release the others


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
