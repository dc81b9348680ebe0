"""Test-only fault injection: `TUNELAB_FAULT=sigkill@POINT[:N]` kills this process at POINT.

Inert unless the variable is set (one dict lookup). The reliability tests use it where a kill
from outside cannot be timed reliably: between two optimizer steps (`sigkill@step:3`, after step 3
finished) and inside a checkpoint save, after every file was written to the staging directory
but before it is published (`sigkill@save:4`). `sigkill@tokenize` fires when tokenization
starts writing the cache. SIGKILL is used because it cannot be caught: nothing of ours gets a
chance to clean up, exactly like the OOM killer or a preempted node.
"""

from __future__ import annotations

import os
import signal

ENV = "TUNELAB_FAULT"


def maybe_fault(point: str, step: int | None = None) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    action, _, where = spec.partition("@")
    name, _, at = where.partition(":")
    if name != point or (at and str(step) != at):
        return
    if action == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "sigint":
        os.kill(os.getpid(), signal.SIGINT)
