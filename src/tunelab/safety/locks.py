"""Exclusive locks so two processes never write the same run directory at once.

`filelock` uses flock(2): the kernel releases the lock when the holder dies (even by SIGKILL),
so a crashed run never leaves a stale lock behind, and `--resume` after a kill just works.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from tunelab.errors import ResourceError

LOCK_NAME = ".tunelab.lock"
OWNER_NAME = ".tunelab.lock.owner"  # who holds it, for the error message (advisory only)


def _owner(path: Path) -> str:
    try:
        info = json.loads((path / OWNER_NAME).read_text(encoding="utf-8"))
        return f" (held by pid {info.get('pid')} on {info.get('host')})"
    except (OSError, ValueError, AttributeError):
        return ""


@contextlib.contextmanager
def run_lock(run_dir: str | os.PathLike[str], wait_s: float = 0.0) -> Iterator[None]:
    """Hold the run directory's lock for the block; fail clearly when another process has it."""
    path = Path(run_dir)
    path.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path / LOCK_NAME), timeout=wait_s)
    try:
        lock.acquire()
    except Timeout:
        raise ResourceError(
            f"{path}: run directory is in use by another tunelab process{_owner(path)}",
            hint="wait for that run to finish, or pass a different --run-dir",
        ) from None
    try:
        owner = {"pid": os.getpid(), "host": os.uname().nodename}
        with contextlib.suppress(OSError):
            (path / OWNER_NAME).write_text(json.dumps(owner), encoding="utf-8")
        yield
    finally:
        with contextlib.suppress(OSError):
            (path / OWNER_NAME).unlink()
        lock.release()
