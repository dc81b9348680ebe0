"""`bucketed` batching: nearly grouped's padding, but steps that do not follow one length (class).

The toy set is length-correlated like the real data of the quality benchmark: class k has rows
of about 10*(k+1) tokens, so a length-sorted stretch of batches is a stretch of one class.
"""

from __future__ import annotations

import random
from collections import Counter
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")

from tunelab.data.batching import BucketedSampler, make_train_sampler, resolve_strategy  # noqa: E402

CLASSES, ROWS, BATCH = 4, 1024, 16


def _toy(seed: int = 0) -> tuple[list[int], list[int]]:
    rng = random.Random(seed)
    labels = [rng.randrange(CLASSES) for _ in range(ROWS)]
    lengths = [10 * (y + 1) + rng.randint(-3, 3) for y in labels]
    return labels, lengths


def _batches(indices: list[int]) -> list[list[int]]:
    return [indices[i : i + BATCH] for i in range(0, len(indices), BATCH)]


def _hf_grouped(lengths: list[int]) -> list[int]:
    from transformers.trainer_pt_utils import LengthGroupedSampler

    return list(LengthGroupedSampler(BATCH, lengths=lengths))


def _classes_per_window(batches: list[list[int]], labels: list[int], window: int = 4) -> float:
    """Distinct majority classes among `window` consecutive steps (mean over the epoch)."""
    major = [Counter(labels[i] for i in b).most_common(1)[0][0] for b in batches]
    spans = [major[i : i + window] for i in range(len(major) - window + 1)]
    return sum(len(set(s)) for s in spans) / len(spans)


def _efficiency(batches: list[list[int]], lengths: list[int]) -> float:
    real = sum(lengths[i] for b in batches for i in b)
    return real / sum(len(b) * max(lengths[i] for i in b) for b in batches)


def test_every_row_once_full_batches_longest_first():
    labels, lengths = _toy()
    torch.manual_seed(0)
    order = list(BucketedSampler(lengths, BATCH))
    assert sorted(order) == list(range(ROWS))
    batches = _batches(order)
    assert all(len(b) == BATCH for b in batches)
    assert max(lengths[i] for i in batches[0]) == max(lengths)  # an out-of-memory shows at step 1


def test_batches_stay_length_homogeneous_but_steps_do_not_follow_one_class():
    labels, lengths = _toy()
    torch.manual_seed(0)
    bucketed = _batches(list(BucketedSampler(lengths, BATCH)))
    torch.manual_seed(0)
    grouped = _batches(_hf_grouped(lengths))
    # Padding: within a few points of transformers' grouping (each batch is cut from a sorted window).
    assert _efficiency(bucketed, lengths) >= 0.95 * _efficiency(grouped, lengths)
    # Composition: a batch still holds one length, so about one class ...
    per_batch = sum(len({labels[i] for i in b}) for b in bucketed) / len(bucketed)
    assert per_batch < 1.5
    # ... but 4 consecutive steps see ~3 of the 4 classes (independent draws: 1 + 3*(3/4) + ... ~ 2.7),
    # where transformers' grouped order walks each mega-batch from long to short: ~1.6.
    assert _classes_per_window(bucketed, labels) >= 2.4
    assert _classes_per_window(grouped, labels) <= 2.0


def test_epochs_differ_and_seed_reproduces():
    _, lengths = _toy()
    torch.manual_seed(1)
    sampler = BucketedSampler(lengths, BATCH)
    first, second = list(sampler), list(sampler)
    assert first != second  # a fresh order every epoch
    torch.manual_seed(1)
    assert list(BucketedSampler(lengths, BATCH)) == first
    # Seeded (as the Trainer makes it): the order depends only on (seed, epoch), so a resume
    # replays it whatever the global RNG did in between.
    seeded = BucketedSampler(lengths, BATCH, seed=7)
    seeded.set_epoch(2)
    epoch2 = list(seeded)
    torch.manual_seed(123)
    again = BucketedSampler(lengths, BATCH, seed=7)
    again.set_epoch(2)
    assert list(again) == epoch2 and list(again) == epoch2
    again.set_epoch(3)
    assert list(again) != epoch2


def test_auto_without_varlen_kernel_is_random_order_and_bucketed_gets_our_sampler():
    cfg = SimpleNamespace(data=SimpleNamespace(batching="auto"))
    plan = SimpleNamespace(varlen_attention=False, attn_implementation="sdpa", device="cpu")
    strategy, reason = resolve_strategy(cfg, plan)
    # Chosen by the quality benchmark: length-sorted orders cost accuracy where length tells the class.
    assert strategy == "dynamic" and "docs/benchmarks.md" in reason
    data = {"length": [3, 1, 2, 5]}
    dataset = type("D", (), {"column_names": ["input_ids", "length"], "__getitem__": lambda self, k: data[k]})()
    assert isinstance(make_train_sampler("bucketed", dataset, 2), BucketedSampler)
    assert make_train_sampler("grouped", dataset, 2) is None  # transformers' own sampler


def test_trainer_uses_bucketed_sampler(tmp_path):
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments

    from tunelab.training.trainer import with_train_sampler

    ds = Dataset.from_dict(
        {"input_ids": [[1] * n for n in (3, 1, 2, 5)], "length": [3, 1, 2, 5], "label": [0, 1, 0, 1]}
    )
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=2, use_cpu=True, report_to=[])
    cls = with_train_sampler(Trainer, "bucketed")
    trainer = cls(model=torch.nn.Linear(1, 1), args=args, train_dataset=ds)
    sampler = trainer._get_train_sampler()
    assert isinstance(sampler, BucketedSampler) and sampler.seed == args.seed
    assert with_train_sampler(Trainer, "grouped") is Trainer


# ------------------------------------------------------------------------------ doctor
def _doctor(batching: str, tied: bool):
    from datasets import Dataset

    from test_doctor_faults import make_cfg
    from tunelab.diagnostics.context import CheckContext
    from tunelab.diagnostics.length_labels import check_length_labels

    labels, lengths = _toy()
    if not tied:
        lengths = [lengths[(i * 7919) % ROWS] for i in range(ROWS)]  # same lengths, unrelated to labels
    ds = Dataset.from_dict({"input_ids": [[1] * n for n in lengths], "labels": labels})
    (finding,) = check_length_labels(CheckContext(make_cfg(data={"batching": batching}), None, train_dataset=ds))
    return finding


@pytest.mark.parametrize("batching", ["grouped", "bucketed"])
def test_doctor_warns_when_length_tells_the_label_and_batches_are_sorted_by_length(batching):
    finding = _doctor(batching, tied=True)
    assert finding.severity == "warning" and finding.evidence["eta2"] > 0.9
    assert "dynamic" in finding.fix and "docs/benchmarks.md" in finding.title and batching in finding.title


@pytest.mark.parametrize(("batching", "tied"), [("auto", True), ("dynamic", True), ("grouped", False)])
def test_doctor_is_quiet_otherwise(batching, tied):
    assert _doctor(batching, tied).severity == "info"
