"""`task.class_weights`: the weights themselves, and the loss they make (tasks/classification_loss.py).
That the key reaches the Trainer's loss, with accumulation still exact: test_training_accumulation.py."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from tunelab.errors import ConfigError  # noqa: E402
from tunelab.tasks.classification_loss import ClassificationLoss, class_weights  # noqa: E402

NAMES = ["a", "b", "c"]


def test_balanced_weights_equalise_classes_and_keep_the_loss_scale():
    ids = [0] * 80 + [1] * 15 + [2] * 5
    w = class_weights("balanced", NAMES, ids)
    assert w == pytest.approx([100 / (3 * 80), 100 / (3 * 15), 100 / (3 * 5)])
    per_class_total = [w[c] * ids.count(c) for c in range(3)]
    assert per_class_total == pytest.approx([100 / 3] * 3)  # every class weighs the same in all
    assert sum(w[i] for i in ids) / len(ids) == pytest.approx(1.0)  # mean weight over rows: 1


def test_none_explicit_and_unseen_labels():
    assert class_weights("none", NAMES, [0, 1]) is None
    assert class_weights({"b": 4.0}, NAMES, [0, 1]) == [1.0, 4.0, 1.0]
    w = class_weights("balanced", NAMES, [0, 0, 1, -100])  # c never seen; -100 ignored
    assert w[2] == pytest.approx(3 / 3) and all(x < float("inf") for x in w)


def test_unknown_label_names_the_key_and_the_labels():
    with pytest.raises(ConfigError, match=r"task.class_weights: 'B' is not a label") as err:
        class_weights({"B": 2.0}, NAMES, [0])
    assert "'a'" in err.value.hint


def test_weighted_loss_is_torch_weighted_cross_entropy_summed_over_the_sample_count():
    torch.manual_seed(0)
    logits = torch.randn(8, 3)
    labels = torch.tensor([0, 1, 2, 0, 0, 1, -100, 2])
    weights = [0.5, 2.0, 3.0]
    got = ClassificationLoss(weights=weights)({"logits": logits}, labels)
    expected = (
        torch.nn.functional.cross_entropy(
            logits, labels, weight=torch.tensor(weights), reduction="sum", ignore_index=-100
        )
        / (labels != -100).sum()
    )
    torch.testing.assert_close(got, expected)
    # Split in two micro-batches with the whole batch's count: the parts add up to the whole.
    loss = ClassificationLoss(weights=weights)
    n = torch.tensor(7)
    parts = loss({"logits": logits[:3]}, labels[:3], n) + loss({"logits": logits[3:]}, labels[3:], n)
    torch.testing.assert_close(parts, expected)


def test_sqrt_weights_halve_the_correction_in_log_terms_and_keep_mean_one():
    ids = [0] * 80 + [1] * 15 + [2] * 5
    bal = class_weights("balanced", NAMES, ids)
    sq = class_weights("sqrt", NAMES, ids)
    assert sum(sq[i] for i in ids) / len(ids) == pytest.approx(1.0)
    assert sq[2] / sq[0] == pytest.approx((bal[2] / bal[0]) ** 0.5)  # 16x -> 4x
    assert sq[0] < 1 < sq[2]
    assert class_weights("sqrt", NAMES, []) is None  # nothing to weigh by


def test_the_log_line_names_the_rule_and_the_extreme_classes_without_markup():
    from tunelab.tasks.classification import _weights_line

    line = _weights_line("sqrt", ["[bold]", "b", "c"], [0.5, 1.0, 2.0])
    assert line == "class weights (task.class_weights: sqrt): 0.50 (\\[bold]) to 2.00 (c) over 3 classes"


def test_unknown_weight_label_fails_when_the_task_learns_its_labels(tmp_path):
    from tunelab.config.loader import validate_config
    from tunelab.tasks.base import task_from_config

    cfg = validate_config(
        {
            "name": "cw",
            "output_dir": str(tmp_path),
            "task": {"type": "classification", "class_weights": {"B": 2.0}},
            "data": {"train_file": "unused.csv"},
            "model": {"name_or_path": "unused"},
            "tracking": "none",
        }
    )
    with pytest.raises(ConfigError, match="'B' is not a label"):
        task_from_config(cfg, NAMES)
    task_from_config(cfg, None)  # labels not known yet: nothing to check
