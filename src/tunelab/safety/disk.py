"""Fail before a write that cannot fit, and turn ENOSPC into a clear ResourceError.

A full disk in the middle of `torch.save` leaves a truncated file; checking free space first (with
an estimate of the bytes needed) fails early and leaves earlier checkpoints and cache entries intact.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from tunelab.errors import ResourceError

# Keep this much free beyond the estimate: other processes and our own logs need room too.
RESERVE_BYTES = 64 << 20
SAFETY_FACTOR = 1.2


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def ensure_free_space(path: str | os.PathLike[str], needed_bytes: int, what: str) -> None:
    """Raise ResourceError when `path`'s filesystem cannot hold `needed_bytes` (+ margin)."""
    where = _existing_ancestor(Path(path))
    free = shutil.disk_usage(where).free
    required = int(needed_bytes * SAFETY_FACTOR) + RESERVE_BYTES
    if free < required:
        raise ResourceError(
            f"{where}: not enough disk space for {what}: needs about {human_bytes(required)}, {human_bytes(free)} free",
            hint="free some space (old runs, .tunelab_cache) or point output_dir/data.cache_dir at a bigger disk; "
            "earlier checkpoints are intact",
        )


@contextlib.contextmanager
def enospc_guard(what: str, where: str | os.PathLike[str]) -> Iterator[None]:
    """Translate 'no space left' / 'quota exceeded' raised inside the block into ResourceError."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise ResourceError(
            f"{where}: disk full while writing {what}",
            hint="free some space and resume with --resume; earlier checkpoints are intact",
        ) from None
    except RuntimeError as exc:
        # torch.save wraps the OSError of its C++ writer in a RuntimeError ("... No space left").
        if "No space left" not in str(exc) and "file write failed" not in str(exc):
            raise
        raise ResourceError(
            f"{where}: disk full while writing {what}",
            hint="free some space and resume with --resume; earlier checkpoints are intact",
        ) from None
