"""Guarantee 4 for the tokenization cache (checkpoints: test_rel_checkpointing.py): free space is
checked before an entry is written, a disk that fills up mid-write is a clear ResourceError, and
neither leaves a readable, half or temp entry behind; earlier entries stay intact.
"""

from __future__ import annotations

import errno
from collections import namedtuple

import pytest

from tunelab.data import cache
from tunelab.errors import ResourceError
from tunelab.safety.disk import enospc_guard, ensure_free_space

Usage = namedtuple("Usage", "total used free")


def _build(n: int = 64):
    from datasets import Dataset

    return lambda: (Dataset.from_dict({"input_ids": [[1, 2, 3, 4]] * n, "length": [4] * n}), {})


def _visible(root):
    return sorted(p.name for p in root.iterdir() if not p.name.endswith(".lock"))


def test_low_free_space_refuses_a_cache_entry_before_writing(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    cache.get_or_build(root, "a" * 64, _build())  # an earlier entry, written while there was room
    monkeypatch.setattr("tunelab.safety.disk.shutil.disk_usage", lambda p: Usage(10**12, 10**12 - 1000, 1000))
    with pytest.raises(ResourceError) as err:
        cache.get_or_build(root, "b" * 64, _build())
    assert "not enough disk space for tokenization cache entry bbbbbbbbbbbb" in err.value.message
    assert "1000 B free" in err.value.message and err.value.hint
    assert _visible(root) == ["a" * 64]
    assert cache.load_entry(root, "a" * 64) is not None  # the earlier entry still loads


def test_disk_full_while_writing_a_cache_entry(tmp_path, monkeypatch):
    from datasets import Dataset

    root = tmp_path / "cache"
    real = Dataset.save_to_disk

    def half_then_enospc(self, path, **kw):
        real(self, path, **kw)  # some bytes landed, then the disk was full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Dataset, "save_to_disk", half_then_enospc)
    with pytest.raises(ResourceError, match="disk full while writing tokenization cache entry cccccccccccc"):
        cache.get_or_build(root, "c" * 64, _build())
    assert _visible(root) == []  # no entry and no temp folder
    monkeypatch.setattr(Dataset, "save_to_disk", real)
    dataset, hit = cache.get_or_build(root, "c" * 64, _build())  # space freed: it simply works
    assert not hit and len(dataset) == 64


def test_enospc_guard_translates_only_disk_full():
    with pytest.raises(ResourceError, match="disk full while writing x"), enospc_guard("x", "/data"):
        raise OSError(errno.EDQUOT, "Disk quota exceeded")
    with pytest.raises(ResourceError), enospc_guard("x", "/data"):
        raise RuntimeError(
            "[enforce fail at inline_container.cc] . PytorchStreamWriter failed writing file data/0: file write failed"
        )
    with pytest.raises(PermissionError), enospc_guard("x", "/data"):
        raise PermissionError(errno.EACCES, "Permission denied")
    with pytest.raises(RuntimeError, match="shape"), enospc_guard("x", "/data"):
        raise RuntimeError("shape mismatch")


def test_free_space_check_uses_the_nearest_existing_directory(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr("tunelab.safety.disk.shutil.disk_usage", lambda p: seen.append(p) or Usage(1, 0, 10**12))
    ensure_free_space(tmp_path / "not" / "yet" / "made", 10, "thing")
    assert seen == [tmp_path]


def test_low_free_space_refuses_the_final_model_before_writing(tmp_path, monkeypatch):
    """After training, model/ is not started on a disk that cannot hold the weights: one clear
    error, no staging or half model/ left, the checkpoints untouched."""
    import torch

    from tunelab.training.finish import save_final_model

    class FakeTrainer:
        model = torch.nn.Linear(256, 256)
        saved = False

        def is_world_process_zero(self):
            return True

        def save_model(self, path):  # pragma: no cover - must not be reached
            FakeTrainer.saved = True

    (tmp_path / "checkpoints" / "checkpoint-2").mkdir(parents=True)
    monkeypatch.setattr("tunelab.safety.disk.shutil.disk_usage", lambda p: Usage(10**12, 10**12 - 1000, 1000))
    with pytest.raises(ResourceError, match="not enough disk space for the final model"):
        save_final_model(FakeTrainer(), tokenizer=None, task=None, run_dir=tmp_path)
    assert not FakeTrainer.saved
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints"]
