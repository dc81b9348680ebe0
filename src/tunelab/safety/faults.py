"""Test-only fault injection: `TUNELAB_FAULT=sigkill@POINT[:N]` kills this process at POINT.

Inert unless the variable is set (one dict lookup). The reliability tests use it where a kill
from outside cannot be timed reliably: between two optimizer steps (`sigkill@step:3`, after step 3
finished) and inside a checkpoint save, after every file was written to the staging directory
but before it is published (`sigkill@save:4`). `sigkill@tokenize` fires when tokenization
starts writing the cache. SIGKILL is used because it cannot be caught: nothing of ours gets a
chance to clean up, exactly like the OOM killer or a preempted node.

Under several processes `TUNELAB_FAULT_RANK=N` limits the fault to global rank N (a scheduler
that signals one rank, a failure on the main process only). Actions: `sigkill`, `sigint`,
`sigterm`, and `raise` (a RuntimeError: an unexpected crash inside our code).
"""

from __future__ import annotations

import os
import signal

ENV = "TUNELAB_FAULT"
RANK_ENV = "TUNELAB_FAULT_RANK"


def maybe_fault(point: str, step: int | None = None) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    action, _, where = spec.partition("@")
    name, _, at = where.partition(":")
    if name != point or (at and str(step) != at):
        return
    only = os.environ.get(RANK_ENV)
    if only and os.environ.get("RANK", "0") != only:
        return
    if action == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "sigint":
        os.kill(os.getpid(), signal.SIGINT)
    elif action == "sigterm":
        os.kill(os.getpid(), signal.SIGTERM)
    elif action == "raise":
        raise RuntimeError(f"injected fault at {point}")
