"""Guarantee 3: an out-of-memory micro-batch is retried at half size with twice the accumulation.

CUDA is not needed to test the policy: the model's forward raises torch.cuda.OutOfMemoryError
(the exception the CUDA caching allocator raises) for micro-batches above a threshold.
"""

from __future__ import annotations

import functools
import logging

import pytest

from test_rel_checkpointing import _trainer
from tunelab.errors import ResourceError
from tunelab.training import checkpointing as ck
from tunelab.training.oom import is_oom, smaller_micro_batch, train_with_oom_retry


def test_smaller_micro_batch_keeps_the_effective_batch():
    assert smaller_micro_batch(16, 1) == (8, 2)
    assert smaller_micro_batch(6, 2) == (3, 4)
    assert smaller_micro_batch(3, 2) == (1, 6)  # odd: the largest divisor below half
    assert smaller_micro_batch(1, 8) is None


def test_is_oom():
    import torch

    assert is_oom(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_oom(RuntimeError("CUDA error: out of memory"))
    assert not is_oom(RuntimeError("shape mismatch"))
    assert not is_oom(ValueError("out of memory"))


def _oom_above(model, max_batch: int, after_step=None, trainer=None):
    import torch

    real = model.forward
    seen = []

    @functools.wraps(real)  # the Trainer reads forward's signature to pick dataset columns
    def forward(*args, **kwargs):
        batch = kwargs["input_ids"].shape[0]
        seen.append(batch)
        if batch > max_batch and (after_step is None or trainer.state.global_step >= after_step):
            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory (simulated, micro-batch {batch})")
        return real(*args, **kwargs)

    model.forward = forward
    return seen


def test_oom_halves_micro_batch_until_it_fits(tmp_path, caplog):
    trainer = _trainer(
        tmp_path / "a", per_device_train_batch_size=8, gradient_accumulation_steps=1, max_steps=3, save_strategy="no"
    )
    seen = _oom_above(trainer.model, 2)
    with caplog.at_level(logging.WARNING, logger="tunelab.training.oom"):
        out = train_with_oom_retry(trainer, None, tmp_path / "a" / "run")
    assert out.global_step == 3
    assert (trainer.args.per_device_train_batch_size, trainer.args.gradient_accumulation_steps) == (2, 4)
    assert seen[:2] == [8, 4] and max(seen[2:]) == 2
    msgs = [r.getMessage() for r in caplog.records]
    assert any(
        "micro-batch 8" in m and "micro-batch 4 x 2 accumulation (effective batch 8 unchanged)" in m for m in msgs
    )
    assert any("micro-batch 4" in m and "micro-batch 2 x 4" in m for m in msgs)
    # Same result as configuring micro-batch 2 x 4 from the start: nothing of the failed tries leaked.
    ref = _trainer(
        tmp_path / "b", per_device_train_batch_size=2, gradient_accumulation_steps=4, max_steps=3, save_strategy="no"
    )
    ref.train()
    a, b = trainer.model.state_dict(), ref.model.state_dict()
    assert all(bool((a[k] == b[k]).all()) for k in a)


def test_oom_after_steps_continues_from_an_emergency_checkpoint(tmp_path):
    trainer = _trainer(
        tmp_path, per_device_train_batch_size=4, gradient_accumulation_steps=1, max_steps=5, save_strategy="no"
    )
    _oom_above(trainer.model, 2, after_step=3, trainer=trainer)
    out = train_with_oom_retry(trainer, None, tmp_path / "run")
    assert out.global_step == 5
    assert trainer.args.per_device_train_batch_size == 2 and trainer.args.gradient_accumulation_steps == 2
    saved = tmp_path / "run" / "checkpoints" / "checkpoint-3"
    assert ck.verify_checkpoint(saved) is None  # the weights of steps 1-3 were kept, not retrained


def test_oom_at_batch_one_gives_up_with_a_plan(tmp_path):
    trainer = _trainer(tmp_path, per_device_train_batch_size=2, max_steps=2, save_strategy="no")
    _oom_above(trainer.model, 0)
    with pytest.raises(ResourceError) as err:
        train_with_oom_retry(trainer, None, tmp_path / "run")
    assert "out of memory at micro-batch 1 (x2 accumulation)" in err.value.message
    assert "gradient_checkpointing" in err.value.hint and "max_length" in err.value.hint


def test_other_errors_are_not_retried(tmp_path):
    trainer = _trainer(tmp_path, per_device_train_batch_size=4, max_steps=2, save_strategy="no")

    @functools.wraps(trainer.model.forward)
    def broken(*a, **k):
        raise RuntimeError("shape mismatch")

    trainer.model.forward = broken
    with pytest.raises(RuntimeError, match="shape mismatch"):
        train_with_oom_retry(trainer, None, tmp_path / "run")
    assert trainer.args.per_device_train_batch_size == 4
