"""Crash-safe checkpoints and exact resume on top of the Hugging Face Trainer.

The Trainer writes `checkpoint-N/` in place, file by file, and deletes old checkpoints right after:
a kill or a full disk in between leaves a half directory that `get_last_checkpoint` happily resumes
from. The Trainer has no hook around the save itself, so `atomic_trainer_class` subclasses it:

1. free disk space is checked first (estimate: the size of the last checkpoint, or the weights +
   Adam moments), so a full disk fails before anything is touched;
2. the Trainer writes into `checkpoints/.staging/checkpoint-N`;
3. every file is fsync'ed, then `tunelab_manifest.json` (size + xxh3-128 digest of every file) is written;
4. the directory is renamed to `checkpoints/checkpoint-N` (atomic), and only then are old
   checkpoints rotated out.

On resume `find_resumable_checkpoint` takes the newest checkpoint whose manifest verifies and
warns about every newer one it skips. `InterruptCallback` turns Ctrl-C / SIGTERM into "save a
checkpoint at the end of this step and stop", and `raise_if_interrupted` prints the command to
resume. Exact resume also needs the data order of every epoch to be reproducible in a fresh
process: see `_EpochSeededLengthGroupedSampler`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shlex
import shutil
import signal
import sys
import weakref
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_pt_utils import LengthGroupedSampler

from tunelab.errors import TunelabError
from tunelab.io import FAST_DIGEST, atomic_write_json, fast_file_digest, replace_dir, sha256_file
from tunelab.safety.disk import enospc_guard, ensure_free_space
from tunelab.safety.faults import maybe_fault
from tunelab.version import __version__

log = logging.getLogger(__name__)

MANIFEST_NAME = "tunelab_manifest.json"
LOSS_STATE = "tunelab_loss_state.json"
STAGING = ".staging"
_CKPT_RE = re.compile(r"^checkpoint-(\d+)$")


class TrainingInterrupted(TunelabError):
    """Ctrl-C / SIGTERM: a checkpoint was saved; exit like a shell does for SIGINT."""

    exit_code = 130


# ------------------------------------------------------------------------------ manifest
def rng_file_names(world_size: int) -> list[str]:
    """The RNG files the Trainer writes: one per process under several processes."""
    return ["rng_state.pth"] if world_size <= 1 else [f"rng_state_{i}.pth" for i in range(world_size)]


def _check_rng_files(ckpt_dir: Path, world_size: int, save_only_model: bool) -> None:
    # A checkpoint without some process's RNG state resumes that process with a fresh RNG (the
    # Trainer only logs it): the run is no longer reproducible. Refuse to publish it.
    missing = [] if save_only_model else [n for n in rng_file_names(world_size) if not (ckpt_dir / n).is_file()]
    if missing:
        raise TunelabError(
            f"{ckpt_dir.name}: RNG state missing for {', '.join(missing)}; not publishing an incomplete checkpoint",
            hint="a process failed while saving; see its log",
        )


def write_manifest(ckpt_dir: Path, step: int, world_size: int = 1) -> dict[str, Any]:
    """fsync every file of a finished checkpoint and record size + fast digest of each (written last).

    The digest is `io.FAST_DIGEST` (xxh3-128), not SHA-256: a 7B full fine-tune writes tens of GB
    per save, and SHA-256 at ~1 GB/s per core cost about as much as writing them again.
    The fsync pass (the disk flushing what the Trainer left in the page cache) runs in a thread of
    its own while the digests are computed: one waits on the disk, the other on the CPU, and both
    release the GIL, so the digests hide behind the flush instead of adding to it
    (benchmarks/bench_checkpoint_hash.py). A digest reads the same bytes whether or not they
    have reached the disk yet.
    `world_size` is recorded so a resume can tell that every process's RNG state is there.
    """
    from concurrent.futures import ThreadPoolExecutor

    paths = sorted(p for p in ckpt_dir.rglob("*") if p.is_file() and p.name != MANIFEST_NAME)
    with ThreadPoolExecutor(1, thread_name_prefix="tunelab-fsync") as flusher:
        flushed = flusher.submit(_fsync_files, paths)
        digests = {path: fast_file_digest(path) for path in paths}
        flushed.result()  # a failed fsync (disk full, I/O error) fails the save here
    files = {
        path.relative_to(ckpt_dir).as_posix(): {"size": path.stat().st_size, FAST_DIGEST: digests[path]}
        for path in paths
    }
    manifest = {
        "tunelab_version": __version__,
        "step": step,
        "world_size": world_size,
        "files": files,
        "total_bytes": sum(f["size"] for f in files.values()),
    }
    atomic_write_json(ckpt_dir / MANIFEST_NAME, manifest)
    return manifest


def _fsync_files(paths: list[Path]) -> None:
    for path in paths:
        with open(path, "rb") as fh:
            os.fsync(fh.fileno())


def verify_checkpoint(ckpt_dir: Path) -> str | None:
    """None when the checkpoint is complete and intact, else what is wrong (one phrase)."""
    mpath = ckpt_dir / MANIFEST_NAME
    if not mpath.is_file():
        return "incomplete (no manifest: the save was interrupted)"
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
        files = manifest["files"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return "corrupt manifest"
    if not files:
        return "empty checkpoint"
    world = int(manifest.get("world_size", 1) or 1)
    if any(n.startswith("rng_state") for n in files):  # absent only with save_only_model
        missing = [n for n in rng_file_names(world) if n not in files]
        if missing:
            return f"RNG state missing for {', '.join(missing)} ({world} processes)"
    for rel, meta in files.items():
        path = ckpt_dir / rel
        if not path.is_file():
            return f"missing file {rel}"
        if path.stat().st_size != meta.get("size"):
            return f"truncated file {rel} ({path.stat().st_size} of {meta.get('size')} bytes)"
        if _digest_mismatch(path, meta):
            return f"checksum mismatch in {rel}"
    return None


def _digest_mismatch(path: Path, meta: dict[str, Any]) -> bool:
    # Checkpoints saved before the fast digest carry sha256: still verified, with their own hash.
    if FAST_DIGEST in meta:
        return fast_file_digest(path) != meta[FAST_DIGEST]
    if "sha256" in meta:
        return sha256_file(path) != meta["sha256"]
    return True  # no digest at all: not a manifest we wrote


def checkpoint_root(run_dir: str | os.PathLike[str]) -> Path:
    """`run_dir/checkpoints` for a run directory; the directory itself if it already is one."""
    from tunelab.runs import CHECKPOINTS

    path = Path(run_dir)
    return path if path.name == CHECKPOINTS else path / CHECKPOINTS


def list_checkpoints(root: Path) -> list[tuple[int, Path]]:
    """(step, path) of every `checkpoint-N` directory, newest first."""
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _CKPT_RE.match(p.name))]
    return sorted(found, reverse=True)


def find_resumable_checkpoint(run_dir: str | os.PathLike[str]) -> Path | None:
    """The newest checkpoint whose manifest verifies; warns about each newer one it skips."""
    skipped: list[str] = []
    for _step, path in list_checkpoints(checkpoint_root(run_dir)):
        problem = verify_checkpoint(path)
        if problem is None:
            if skipped:
                _warn(f"resuming from {path.name}; skipped {'; '.join(skipped)}")
            return path
        skipped.append(f"{path.name}: {problem}")
    if skipped:
        _warn(f"no intact checkpoint to resume from ({'; '.join(skipped)}); starting from the beginning")
    return None


def clean_staging(run_dir: str | os.PathLike[str]) -> None:
    """Remove leftovers of saves that were killed midway (call with the run lock held)."""
    shutil.rmtree(checkpoint_root(run_dir) / STAGING, ignore_errors=True)


def _warn(message: str) -> None:
    log.warning(message)
    from tunelab import ui

    ui.warn(message)


# ------------------------------------------------------------------------ atomic saving
def _estimate_checkpoint_bytes(trainer: Any, root: Path) -> int:
    """Bytes the next checkpoint needs: the last one's size, else weights + two Adam moments."""
    for _step, path in list_checkpoints(root):
        with contextlib.suppress(OSError, ValueError, KeyError):
            return int(json.loads((path / MANIFEST_NAME).read_text(encoding="utf-8"))["total_bytes"])
    params = list(trainer.model.parameters())
    weights = sum(p.numel() * p.element_size() for p in params)
    moments = 0 if trainer.args.save_only_model else sum(2 * p.numel() * 4 for p in params if p.requires_grad)
    return weights + moments


def _publish(staged: Path, final: Path) -> None:
    """Rename a finished staging dir into place, replacing a stale dir of the same step (e.g. a
    corrupt checkpoint-N we skipped and now re-save)."""
    replace_dir(staged, final)


class AtomicCheckpointMixin:
    """Mixed in before a HF trainer class; see the module docstring for the protocol."""

    _tl_staging: Path | None = None
    _tl_resume_from: str | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_callback(_LossStateCallback(weakref.proxy(self)))  # type: ignore[attr-defined]

    def train(self, resume_from_checkpoint: Any = None, *args: Any, **kwargs: Any) -> Any:
        self._tl_resume_from = str(resume_from_checkpoint) if isinstance(resume_from_checkpoint, (str, Path)) else None
        return super().train(resume_from_checkpoint, *args, **kwargs)  # type: ignore[misc]

    def _get_output_dir(self, trial: Any) -> str:
        # While saving, the Trainer writes checkpoint-N under the staging root instead.
        return str(self._tl_staging) if self._tl_staging is not None else super()._get_output_dir(trial)  # type: ignore[misc]

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, rotate_checkpoints

        root = Path(super()._get_output_dir(trial))  # type: ignore[misc]
        step = self.state.global_step  # type: ignore[attr-defined]
        name = f"{PREFIX_CHECKPOINT_DIR}-{step}"
        main = self.args.should_save  # type: ignore[attr-defined]
        wait = self.accelerator.wait_for_everyone  # type: ignore[attr-defined]  # no-op in one process
        ensure_free_space(root, _estimate_checkpoint_bytes(self, root), f"checkpoint {name}")
        staging = root / STAGING
        if main:  # one process clears a stale staging dir, before any process writes into it
            shutil.rmtree(staging / name, ignore_errors=True)
        wait()
        limit = self.args.save_total_limit  # type: ignore[attr-defined]
        self._tl_staging, self.args.save_total_limit = staging, None  # type: ignore[attr-defined]
        try:
            with enospc_guard(f"checkpoint {name}", root):
                super()._save_checkpoint(model, trial)  # type: ignore[misc]
                self._unstage_best(staging, root, name)
                if main:
                    atomic_write_json(staging / name / LOSS_STATE, _loss_state(self))
                # Every process has written its files (rng_state_<rank>.pth): only now may the
                # main process checksum and publish the checkpoint.
                wait()
                maybe_fault("save", step)  # test-only: SIGKILL with a fully staged, unpublished checkpoint
                if main:
                    world = self.args.world_size  # type: ignore[attr-defined]
                    _check_rng_files(staging / name, world, self.args.save_only_model)  # type: ignore[attr-defined]
                    write_manifest(staging / name, step, world_size=world)
                    _publish(staging / name, root / name)
        except BaseException:
            if main:
                shutil.rmtree(staging / name, ignore_errors=True)
            raise
        finally:
            self._tl_staging, self.args.save_total_limit = None, limit  # type: ignore[attr-defined]
        wait()  # no process goes on (or reads checkpoints) before the checkpoint is published
        if main:
            with contextlib.suppress(OSError):
                staging.rmdir()  # only when empty: nothing is left behind after a clean save
            rotate_checkpoints(
                output_dir=str(root), save_total_limit=limit, best_model_checkpoint=self.state.best_model_checkpoint
            )  # type: ignore[attr-defined]

    def _unstage_best(self, staging: Path, root: Path, name: str) -> None:
        """The Trainer records the best checkpoint under the output dir of the save, which is the
        staging root, renamed away right after: point it (in memory and in the trainer_state.json a
        resume reads) at the published location. Otherwise load_best_model_at_end silently skips
        the best model and save_total_limit=1 crashes at the end of training."""
        best = self.state.best_model_checkpoint  # type: ignore[attr-defined]
        if not best or Path(best).parent != staging:
            return
        self.state.best_model_checkpoint = str(root / Path(best).name)  # type: ignore[attr-defined]
        state_file = staging / name / "trainer_state.json"
        if self.args.should_save and state_file.is_file():  # type: ignore[attr-defined]
            self.state.save_to_json(str(state_file))  # type: ignore[attr-defined]

    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        sampler = super()._get_train_sampler(train_dataset)  # type: ignore[misc]
        if type(sampler) is LengthGroupedSampler:
            sampler.__class__ = _EpochSeededLengthGroupedSampler
            sampler.seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed  # type: ignore[attr-defined]
            sampler.epoch = 0
        return sampler


def _loss_state(trainer: Any) -> dict[str, Any]:
    # The Trainer keeps its running loss sums outside TrainerState, so a resumed run would report
    # train_loss over the resumed steps only and a first logged loss over fewer steps than the
    # uninterrupted run. Saved here and restored by _LossStateCallback for identical metrics.
    return {
        "total_loss_scalar": trainer._total_loss_scalar,
        "pending_loss": trainer._tr_loss.item(),
        "globalstep_last_logged": trainer._globalstep_last_logged,
    }


class _LossStateCallback(TrainerCallback):
    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        import torch

        t = self.trainer
        path = Path(t._tl_resume_from or "") / LOSS_STATE
        if not t._tl_resume_from or not path.is_file():
            return
        saved = json.loads(path.read_text(encoding="utf-8"))
        t._total_loss_scalar = float(saved["total_loss_scalar"])
        t._tr_loss = torch.tensor(saved["pending_loss"], dtype=t._tr_loss.dtype, device=t._tr_loss.device)
        t._globalstep_last_logged = int(saved["globalstep_last_logged"])
        # train_loss = total / (global_step - initial): count from 0 like the uninterrupted run. (The
        # throughput metrics of the resumed process then span all steps: they are not comparable.)
        t._initial_global_step = 0


class _EpochSeededLengthGroupedSampler(LengthGroupedSampler):
    """LengthGroupedSampler whose shuffle depends only on (seed, epoch).

    Stock LengthGroupedSampler draws its permutation from the global torch RNG when an epoch
    starts. A resumed process reaches epoch e with a different global RNG state than the original
    run (dropout draws of the earlier epochs are not replayed), so the resumed run saw other batches
    from epoch 1 on. accelerate calls `set_epoch`, like for its own SeedableRandomSampler.
    """

    seed: int
    epoch: int

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):  # type: ignore[override]
        import torch

        self.generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return super().__iter__()


_CLASSES: dict[type, type] = {}


def atomic_trainer_class(base: type) -> type:
    """`base` (Trainer, Seq2SeqTrainer, SFTTrainer...) with atomic checkpoints and exact resume."""
    if issubclass(base, AtomicCheckpointMixin):
        return base
    if base not in _CLASSES:
        _CLASSES[base] = type(base.__name__, (AtomicCheckpointMixin, base), {"__module__": __name__})
    return _CLASSES[base]


# ----------------------------------------------------------------------------- Ctrl-C
class InterruptCallback(TrainerCallback):
    """First Ctrl-C / SIGTERM: checkpoint at the end of the current step and stop. Second: abort now.

    Every process installs the handler, and at each step end the processes agree (one tiny
    all-reduce) whether any of them was signalled: a launcher or scheduler may signal only some
    ranks, and a rank that stops alone leaves the others hanging in the next collective.
    """

    OTHER = "a signal to another process"

    def __init__(self) -> None:
        self.requested: str | None = None
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, _frame: Any) -> None:
        self.requested = signal.Signals(signum).name
        _warn(f"{self.requested}: saving a checkpoint after this step, then stopping (press Ctrl-C again to abort now)")
        for sig, prev in self._previous.items():  # a second signal takes the default (immediate) path
            signal.signal(sig, prev)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handler)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        maybe_fault("step", state.global_step)  # test-only fault injection, inert by default
        if _any_process(self.requested is not None, args) and not self.requested:
            self.requested = self.OTHER
        if self.requested:
            control.should_save = True
            control.should_training_stop = True
        return control

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        with contextlib.suppress(ValueError):
            for sig, prev in self._previous.items():
                signal.signal(sig, prev)
        self._previous.clear()


def _any_process(flag: bool, args: Any) -> bool:
    """True on every process when `flag` is True on at least one (a max all-reduce)."""
    import torch
    import torch.distributed as dist

    if getattr(args, "world_size", 1) <= 1 or not dist.is_available() or not dist.is_initialized():
        return flag
    t = torch.tensor([int(flag)], device=args.device)  # on nccl the tensor must live on the GPU
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def resume_command(run_dir: Path, config_path: str | os.PathLike[str] | None = None) -> str:
    """The exact command line that continues this run (the user's own argv when we have it)."""
    argv = list(sys.argv[1:])
    if "train" in argv and not any(a == "--help" for a in argv):
        argv = [a for a in argv if a != "--resume"]
        if "--run-dir" in argv:
            i = argv.index("--run-dir")
            del argv[i : i + 2]
        argv = [a for a in argv if not a.startswith("--run-dir=")]
    else:
        argv = ["train", str(config_path or Path(run_dir) / "config.yaml")]
    return shlex.join(["tunelab", *argv, "--run-dir", str(run_dir), "--resume"])


def raise_if_interrupted(callback: InterruptCallback, run_dir: Path, config_path: Any = None) -> None:
    """After `trainer.train()` returns: if a signal stopped it, exit 130 with the resume command."""
    if not callback.requested:
        return
    ckpt = find_resumable_checkpoint(run_dir)
    saved = f"checkpoint saved: {ckpt}" if ckpt else "no checkpoint could be saved"
    raise TrainingInterrupted(
        f"training interrupted by {callback.requested}; {saved}",
        hint=f"resume with: {resume_command(run_dir, config_path)}",
    )


def rewind_history(history: Path, checkpoint: Path | None) -> None:
    """Drop history.jsonl records logged after `checkpoint` (the resumed run logs those steps again)."""
    from tunelab.io import read_jsonl

    if not history.is_file():
        return
    step = checkpoint_step(checkpoint)
    records = read_jsonl(history)  # also drops a line torn by the kill
    kept = [r for r in records if isinstance(r.get("step"), int) and r["step"] <= step and r.get("kind") != "summary"]
    if len(kept) != len(records) or history.read_bytes().count(b"\n") != len(records):
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept)
        from tunelab.io import atomic_write_text

        atomic_write_text(history, text)


def checkpoint_step(checkpoint: Path | None) -> int:
    if checkpoint is None:
        return 0
    m = _CKPT_RE.match(Path(checkpoint).name)
    return int(m.group(1)) if m else 0
