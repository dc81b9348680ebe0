"""Checkpoint integrity (guarantee 1), full disk (guarantee 4) and exact data order on resume.

In-process and fast: a tiny BERT trained for a few steps by the Trainer class tunelab builds
(`atomic_trainer_class`). The subprocess kill tests are in test_rel_resume.py.
"""

from __future__ import annotations

import errno
import json
import sys
from pathlib import Path

import pytest

from rel_support import write_rows
from tunelab.errors import ResourceError
from tunelab.training import checkpointing as ck


# --------------------------------------------------------------------------- manifest
def _fake_checkpoint(root: Path, step: int) -> Path:
    d = root / "checkpoints" / f"checkpoint-{step}"
    d.mkdir(parents=True)
    (d / "model.safetensors").write_bytes(bytes(range(256)) * 4)
    (d / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    (d / "sub").mkdir()
    (d / "sub" / "x.bin").write_bytes(b"abc")
    ck.write_manifest(d, step)
    return d


@pytest.mark.parametrize(
    "damage, problem",
    [
        (lambda d: (d / ck.MANIFEST_NAME).unlink(), "incomplete (no manifest"),
        (lambda d: (d / ck.MANIFEST_NAME).write_text("{not json"), "corrupt manifest"),
        (lambda d: (d / "sub" / "x.bin").unlink(), "missing file sub/x.bin"),
        (lambda d: (d / "model.safetensors").write_bytes(b"\0" * 10), "truncated file model.safetensors"),
        (
            lambda d: (d / "model.safetensors").write_bytes(bytes(reversed(range(256))) * 4),
            "checksum mismatch in model.safetensors",
        ),
    ],
)
def test_damaged_checkpoint_is_detected_and_skipped(tmp_path, capsys, damage, problem):
    older = _fake_checkpoint(tmp_path, 4)
    newer = _fake_checkpoint(tmp_path, 8)
    assert ck.verify_checkpoint(newer) is None
    damage(newer)
    assert problem in ck.verify_checkpoint(newer)
    assert ck.find_resumable_checkpoint(tmp_path) == older
    err = " ".join(capsys.readouterr().err.split())
    assert "resuming from checkpoint-4" in err and f"checkpoint-8: {problem}" in err


def test_manifest_uses_the_fast_digest_not_sha256(tmp_path, monkeypatch):
    from tunelab import io

    def no_sha256(*_a):  # SHA-256 of tens of GB per save cost as much as the save itself
        raise AssertionError("sha256 used for a new checkpoint")

    monkeypatch.setattr(ck, "sha256_file", no_sha256)
    d = _fake_checkpoint(tmp_path, 2)
    files = json.loads((d / ck.MANIFEST_NAME).read_text())["files"]
    assert all(set(meta) == {"size", io.FAST_DIGEST} for meta in files.values())
    assert ck.verify_checkpoint(d) is None


def test_digests_run_while_the_disk_flushes_and_every_file_is_synced(tmp_path, monkeypatch):
    """The digests (CPU) overlap the fsync pass (disk), so they add little to a durable save; a
    failed fsync still fails the save. Events, not timings: a digest must start while an fsync is
    in flight, which a digest-after-fsync loop never does."""
    import os
    import threading

    d = tmp_path / "checkpoint-3"
    d.mkdir()
    for name in ("model.safetensors", "optimizer.pt", "trainer_state.json"):
        (d / name).write_bytes(name.encode() * 100)
    digest_started, in_flush, seen = threading.Event(), threading.Event(), []
    synced: list[str] = []
    real_digest = ck.fast_file_digest

    def slow_fsync(fd):
        in_flush.set()
        digest_started.wait(timeout=3)  # a sequential loop would only time out here
        synced.append(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))
        in_flush.clear()

    def digest(path):
        digest_started.set()
        seen.append(in_flush.wait(timeout=3))
        return real_digest(path)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    monkeypatch.setattr(ck, "fast_file_digest", digest)
    manifest = ck.write_manifest(d, 3)
    assert seen[0], "the first digest waited for the fsync pass instead of running beside it"
    assert {"model.safetensors", "optimizer.pt", "trainer_state.json"} <= set(synced)
    assert len(manifest["files"]) == 3
    monkeypatch.undo()
    assert ck.verify_checkpoint(d) is None

    def failing_fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    (d / ck.MANIFEST_NAME).unlink()
    with pytest.raises(OSError, match="Input/output"):
        ck.write_manifest(d, 3)
    assert not (d / ck.MANIFEST_NAME).exists()


def test_checkpoints_with_a_sha256_manifest_still_verify(tmp_path):
    from tunelab.io import sha256_file

    d = _fake_checkpoint(tmp_path, 2)
    manifest = json.loads((d / ck.MANIFEST_NAME).read_text())
    manifest["files"] = {
        rel: {"size": m["size"], "sha256": sha256_file(d / rel)} for rel, m in manifest["files"].items()
    }
    (d / ck.MANIFEST_NAME).write_text(json.dumps(manifest))
    assert ck.verify_checkpoint(d) is None
    (d / "sub" / "x.bin").write_bytes(b"abd")
    assert ck.verify_checkpoint(d) == "checksum mismatch in sub/x.bin"


def test_fast_digest_sees_every_chunk_and_does_not_depend_on_threads(tmp_path, monkeypatch):
    from tunelab import io

    monkeypatch.setattr(io, "_DIGEST_CHUNK", 1000)  # 10 chunks: exercise the chunked, threaded path
    data = bytearray(range(256)) * 39 + b"x"
    path = tmp_path / "w.bin"
    path.write_bytes(data)
    digest = io.fast_file_digest(path, workers=4)
    assert digest == io.fast_file_digest(path, workers=1)
    for offset in (0, 999, 1000, 5555, len(data) - 1):  # a flipped byte anywhere, chunk edges too
        flipped = bytearray(data)
        flipped[offset] ^= 1
        path.write_bytes(flipped)
        assert io.fast_file_digest(path) != digest, offset
    path.write_bytes(data[:-1])
    assert io.fast_file_digest(path) != digest
    (tmp_path / "empty").write_bytes(b"")
    assert io.fast_file_digest(tmp_path / "empty") == io.fast_file_digest(tmp_path / "empty")


def test_no_intact_checkpoint_means_start_over(tmp_path, capsys):
    d = _fake_checkpoint(tmp_path, 3)
    (d / ck.MANIFEST_NAME).unlink()
    assert ck.find_resumable_checkpoint(tmp_path) is None
    assert "starting from the beginning" in capsys.readouterr().err
    assert ck.find_resumable_checkpoint(tmp_path / "nothing_here") is None


def test_rewind_history_drops_steps_after_checkpoint_and_torn_line(tmp_path):
    h = tmp_path / "history.jsonl"
    lines = [json.dumps({"step": s, "kind": "train", "loss": 1.0}) for s in range(1, 8)]
    h.write_text("\n".join(lines) + '\n{"step": 8, "kin')  # torn by the kill
    ck.rewind_history(h, tmp_path / "checkpoint-5")
    assert [json.loads(x)["step"] for x in h.read_text().splitlines()] == [1, 2, 3, 4, 5]
    ck.rewind_history(h, None)  # no checkpoint: the run starts over
    assert h.read_text() == ""


def test_resume_command_is_the_users_command_plus_run_dir(monkeypatch, tmp_path):
    monkeypatch.setattr(
        sys, "argv", ["/venv/bin/tunelab", "train", "my cfg.yaml", "--set", "training.seed=3", "--resume"]
    )
    cmd = ck.resume_command(tmp_path / "run")
    assert cmd == f"tunelab train 'my cfg.yaml' --set training.seed=3 --run-dir {tmp_path / 'run'} --resume"
    monkeypatch.setattr(sys, "argv", ["pytest"])
    assert ck.resume_command(tmp_path / "r", "c.yaml") == f"tunelab train c.yaml --run-dir {tmp_path / 'r'} --resume"


# ----------------------------------------------------------------- in-process trainer
def _trainer(tmp_path: Path, with_eval: bool = False, **args):
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    from tiny import tiny_model_dir

    mdir = tiny_model_dir(tmp_path / "m", "bert", head="classification", num_labels=3)
    tok = AutoTokenizer.from_pretrained(mdir)
    write_rows(tmp_path / "d.csv", 24)
    import pandas as pd

    frame = pd.read_csv(tmp_path / "d.csv")
    ds = Dataset.from_pandas(frame).map(
        lambda b: {**tok(b["text"]), "labels": ["abc".index(x) for x in b["label"]]},
        batched=True,
        remove_columns=list(frame.columns),
    )
    kw = dict(
        output_dir=str(tmp_path / "run" / "checkpoints"),
        per_device_train_batch_size=4,
        max_steps=6,
        save_strategy="steps",
        save_steps=2,
        save_total_limit=2,
        use_cpu=True,
        report_to=[],
        disable_tqdm=True,
        logging_steps=1,
        train_sampling_strategy="group_by_length",
    )
    kw.update(args)
    model = AutoModelForSequenceClassification.from_pretrained(mdir)
    cls = ck.atomic_trainer_class(Trainer)
    return cls(
        model=model,
        args=TrainingArguments(**kw),
        train_dataset=ds,
        eval_dataset=ds if with_eval else None,
        processing_class=tok,
        data_collator=DataCollatorWithPadding(tok),
    )


def test_checkpoints_are_published_whole_and_rotated(tmp_path):
    trainer = _trainer(tmp_path)
    trainer.train()
    root = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in root.iterdir()) == ["checkpoint-4", "checkpoint-6"]  # rotated, no staging left
    for d in root.iterdir():
        assert ck.verify_checkpoint(d) is None
        manifest = json.loads((d / ck.MANIFEST_NAME).read_text())
        assert {"model.safetensors", "optimizer.pt", "rng_state.pth", "trainer_state.json"} <= set(manifest["files"])
    assert ck.find_resumable_checkpoint(tmp_path / "run") == root / "checkpoint-6"


def test_best_checkpoint_points_at_the_published_dir_with_save_total_limit_1(tmp_path):
    """Regression (make demo crashed): the Trainer recorded the best checkpoint under the staging
    root, which is renamed away, so load_best_model_at_end silently skipped the best model and
    save_total_limit=1 crashed in os.path.samefile at the end of training."""
    trainer = _trainer(
        tmp_path,
        with_eval=True,
        eval_strategy="steps",
        eval_steps=2,
        save_total_limit=1,
        load_best_model_at_end=True,
        metric_for_best_model="loss",
    )
    trainer.train()
    root = tmp_path / "run" / "checkpoints"
    best = Path(trainer.state.best_model_checkpoint)
    assert best.parent == root and best.is_dir()
    state = json.loads((best / "trainer_state.json").read_text())
    assert state["best_model_checkpoint"] == str(best)  # a resumed run reads this one
    assert ck.verify_checkpoint(best) is None


def test_full_disk_during_save_keeps_earlier_checkpoints(tmp_path, monkeypatch):
    import torch

    trainer = _trainer(tmp_path)
    real_save = torch.save
    saves = {"n": 0}

    def failing_save(obj, f, *a, **k):  # the disk fills up while writing the 2nd checkpoint's optimizer
        if "checkpoint-4" in str(f):
            raise OSError(errno.ENOSPC, "No space left on device")
        saves["n"] += 1
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(ResourceError, match="disk full while writing checkpoint checkpoint-4"):
        trainer.train()
    root = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == ["checkpoint-2"]
    assert ck.verify_checkpoint(root / "checkpoint-2") is None  # the earlier checkpoint is intact
    assert not list((root / ck.STAGING).glob("*")) if (root / ck.STAGING).exists() else True


def test_low_free_space_fails_before_writing(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    trainer = _trainer(tmp_path, max_steps=4)
    Usage = namedtuple("Usage", "total used free")
    real = shutil.disk_usage
    calls = {"n": 0}

    def usage(path):
        calls["n"] += 1
        # Plenty of room for the first checkpoint, then the disk is nearly full.
        return real(path) if calls["n"] == 1 else Usage(10**12, 10**12 - 1000, 1000)

    monkeypatch.setattr("tunelab.safety.disk.shutil.disk_usage", usage)
    with pytest.raises(ResourceError) as err:
        trainer.train()
    assert "not enough disk space for checkpoint checkpoint-4" in err.value.message
    assert "earlier checkpoints are intact" in err.value.hint
    root = tmp_path / "run" / "checkpoints"
    assert [p.name for p in root.iterdir() if not p.name.startswith(".")] == ["checkpoint-2"]
    assert ck.verify_checkpoint(root / "checkpoint-2") is None


def test_length_grouped_order_depends_only_on_seed_and_epoch(tmp_path):
    """A resumed process has another global RNG state at an epoch start; the order must not care."""
    import torch
    from transformers.trainer_pt_utils import LengthGroupedSampler

    trainer = _trainer(tmp_path)
    sampler = trainer._get_train_sampler()
    assert isinstance(sampler, LengthGroupedSampler)
    torch.manual_seed(1)
    first = list(sampler)
    torch.manual_seed(2)
    assert list(sampler) == first
    sampler.set_epoch(1)
    assert list(sampler) != first  # still reshuffled every epoch
    # The stock sampler (the bug this fixes) follows the global RNG.
    stock = LengthGroupedSampler(4, lengths=sampler.lengths)
    torch.manual_seed(1)
    a = list(stock)
    torch.manual_seed(2)
    assert list(stock) != a


@pytest.mark.slow
def test_random_sampler_resume_is_bit_identical(tmp_path):
    """The Trainer-level protocol with the random sampler (batching dynamic/max_length), killed in epoch 2."""
    import subprocess

    from rel_support import assert_same_weights
    from tiny import tiny_model_dir

    mdir = tiny_model_dir(tmp_path / "m", "bert", head="classification", num_labels=3)
    script = str(Path(__file__).with_name("rel_trainer_script.py"))

    def run(out: str, *extra: str, fault: str = "") -> int:
        import os

        env = {**os.environ, "TUNELAB_FAULT": fault}
        return subprocess.run(
            [sys.executable, script, str(mdir), str(tmp_path / out), "--sampler", "random", *extra],
            env=env,
            capture_output=True,
            timeout=300,
        ).returncode

    assert run("full") == 0
    assert run("killed", fault="sigkill@step:15") == -9
    assert run("killed", "--resume") == 0
    assert_same_weights(tmp_path / "full" / "final.safetensors", tmp_path / "killed" / "final.safetensors")
    a, b = (json.loads((tmp_path / d / "result.json").read_text()) for d in ("full", "killed"))
    assert b["resumed_from"].endswith("checkpoint-12")
    assert a["losses"] == b["losses"] and a["train_loss"] == b["train_loss"]
