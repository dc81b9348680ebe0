"""Atomic file output and content hashing, used by every module that writes.

A crashed run must never leave a half file that looks whole: everything is written to a temp
file in the same directory, flushed and fsync'ed, then renamed over the target (rename is
atomic on POSIX within one filesystem).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


def _fsync_dir(path: Path) -> None:
    # The rename is only durable once the directory entry is on disk.
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temp path next to `target`; on success it replaces `target` atomically.

    Use for writers that want a filename (pandas, matplotlib, torch.save). On error the
    temp file is removed and `target` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or ".tmp", dir=target.parent)
    os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes 0600: a shared run dir must stay readable
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
        _fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def atomic_write_bytes(target: str | os.PathLike[str], data: bytes) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def atomic_write_text(target: str | os.PathLike[str], text: str) -> Path:
    return atomic_write_bytes(target, text.encode("utf-8"))


def atomic_write_json(target: str | os.PathLike[str], obj: Any, indent: int = 2) -> Path:
    text = json.dumps(obj, indent=indent, ensure_ascii=False, default=_json_default, sort_keys=False)
    return atomic_write_text(target, text + "\n")


def current_umask() -> int:
    """The process umask, read without changing it where possible (os.umask can only set it, and
    setting it briefly would let another thread create a world-writable file meanwhile)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _old_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.old")


def recover_dir(target: Path) -> bool:
    """Put back a directory that a crash left moved aside by `replace_dir` (True if it did).

    The fallback swap renames `target` to `.target.old` before renaming the new one in: a crash
    between the two leaves the previous complete directory there, and this restores it.
    """
    old = _old_name(Path(target))
    if old.is_dir() and not Path(target).exists():
        os.replace(old, target)
        _fsync_dir(Path(target).parent)
        return True
    return False


def replace_dir(staged: Path, target: Path) -> None:
    """Make the complete directory `staged` become `target`, replacing an existing one.

    Linux swaps the two in one atomic `renameat2(RENAME_EXCHANGE)`, so there is never a moment
    without a complete `target`. Elsewhere (or on a filesystem without it) the old one is renamed to
    `.target.old` first and removed only once the new one is in place; `recover_dir` (run by every
    later replace and by readers such as `runs.final_model_dir`) restores it after a crash between.
    """
    staged, target = Path(staged), Path(target)
    recover_dir(target)
    if target.exists() and _exchange(staged, target):
        _fsync_dir(target.parent)
        shutil.rmtree(staged, ignore_errors=True)  # now holds the previous content
        return
    if target.exists():
        old = _old_name(target)
        shutil.rmtree(old, ignore_errors=True)  # a leftover of a finished swap: target is complete
        os.replace(target, old)
        os.replace(staged, target)
        _fsync_dir(target.parent)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staged, target)
    _fsync_dir(target.parent)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False when unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):  # glibc < 2.28 / another libc
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # filesystem or kernel without it
        return False
    raise OSError(err, os.strerror(err), str(b))


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp directory next to `target`; on success it becomes `target`.

    An existing `target` is replaced only after the new one is complete.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes 0700: teammates must be able to read it
    try:
        yield tmp
        for root, _dirs, files in os.walk(tmp):
            for name in files:
                with contextlib.suppress(OSError), open(os.path.join(root, name), "rb") as fh:
                    os.fsync(fh.fileno())
        replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def append_jsonl(target: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Append one JSON line and flush: history files are logs, a torn last line is skipped on read."""
    with open(target, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, ensure_ascii=False, default=_json_default) + "\n")
        fh.flush()


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a JSONL log, skipping a torn final line left by a kill."""
    out: list[dict[str, Any]] = []
    p = Path(path)
    if not p.exists():
        return out
    for line in p.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


# Checkpoint integrity: xxh3-128 (non-cryptographic, ~10x the speed of SHA-256) over 16 MiB chunks
# hashed in parallel threads (xxhash releases the GIL), combined with the file size. Integrity, not
# authenticity: it catches torn, truncated and bit-rotted files, and costs a few percent of the save
# (benchmarks/bench_checkpoint_hash.py -> docs/benchmarks.md) instead of a third of it.
FAST_DIGEST = "xxh3_128_16m"
_DIGEST_CHUNK = 16 << 20  # small enough to spread one file over every thread


def fast_file_digest(path: str | os.PathLike[str], workers: int | None = None) -> str:
    """`FAST_DIGEST` of a file: xxh3-128 of (size, xxh3-128 of each 16 MiB chunk in order)."""
    import mmap

    import xxhash

    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            return xxhash.xxh3_128(b"0:").hexdigest()
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            view = memoryview(mm)
            try:
                chunks = [view[i : i + _DIGEST_CHUNK] for i in range(0, size, _DIGEST_CHUNK)]
                digests = _map_threads(lambda c: xxhash.xxh3_128(c).digest(), chunks, workers)
                for chunk in chunks:
                    chunk.release()
            finally:
                view.release()
    return xxhash.xxh3_128(f"{size}:".encode() + b"".join(digests)).hexdigest()


def _map_threads(fn: Any, items: list[Any], workers: int | None) -> list[Any]:
    workers = workers or min(8, os.cpu_count() or 1)
    if len(items) == 1 or workers == 1:
        return [fn(x) for x in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(workers, len(items))) as pool:
        return list(pool.map(fn, items))


def sha256_json(obj: Any) -> str:
    """Stable hash of a JSON-able object (sorted keys), for cache keys and fingerprints."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=_json_default).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def _json_default(obj: Any) -> Any:
    # numpy scalars/arrays and Paths show up in metrics and manifests.
    if isinstance(obj, Path):
        return str(obj)
    for attr in ("item", "tolist"):
        fn = getattr(obj, attr, None)
        if callable(fn):
            try:
                return fn()
            except (TypeError, ValueError):
                pass
    if isinstance(obj, set):
        return sorted(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")
