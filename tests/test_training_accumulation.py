"""Gradient accumulation is invisible: one optimizer step over 16 samples gives the same loss and
the same update as batch 16 x 1 step or batch 4 x 4 accumulation steps, with and without label
smoothing, for an encoder, a pooled decoder and packed batches.

Models that take loss kwargs (`accepts_loss_kwargs`) are trusted by the Trainer to divide their
loss by the whole accumulated batch (`num_items_in_batch`), so it does not divide by the
accumulation steps again; a model that claims it and still averages per micro-batch, or a label
smoother that does not see the count, scales the loss by the accumulation factor.
Through tunelab's own trainer construction (`Task.build_trainer`), one step of SGD.
"""

from __future__ import annotations

import random

import pytest

torch = pytest.importorskip("torch")

from tiny import make_tokenizer, tiny_model_dir  # noqa: E402

N = 16


def _rows(seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    words = ["refund", "card", "login", "password", "parcel", "late", "please", "now", "my", "the"]
    labels = ["billing", "login", "shipping"]
    return [
        {"id": f"r{i}", "text": " ".join(rng.choice(words) for _ in range(rng.randint(2, 12))), "label": labels[i % 3]}
        for i in range(N)
    ]


def _one_step(
    tmp_path, model_type: str, batching: str, batch: int, accumulation: int, smoothing: float, weights="none"
):
    """(logged train loss, {param name: update}) after one optimizer step over the 16 rows."""
    import datasets

    from tunelab.config.loader import validate_config
    from tunelab.runtime.plan import decide_plan
    from tunelab.tasks.base import task_from_config

    tok = make_tokenizer()
    model_dir = tiny_model_dir(tmp_path / "models", model_type, head="classification", num_labels=3, tokenizer=tok)
    cfg = validate_config(
        {
            "name": "ga",
            "output_dir": str(tmp_path / "runs"),
            "task": {"type": "classification", "label_smoothing": smoothing, "class_weights": weights},
            "data": {"train_file": "unused.csv", "batching": batching, "max_length": 32},
            "model": {"name_or_path": str(model_dir)},
            "training": {
                "per_device_train_batch_size": batch,
                "gradient_accumulation_steps": accumulation,
                "max_steps": 1,
                "learning_rate": 1.0,
                "optim": "sgd",
                "weight_decay": 0.0,
                "max_grad_norm": 0.0,  # no clipping: compare raw updates
                "warmup_steps": 0,
                "lr_scheduler_type": "constant",
                "logging_steps": 1,
                "eval_strategy": "no",
                "save_strategy": "no",
                "load_best_model_at_end": False,
                "dataloader_num_workers": 0,
            },
            "runtime": {"precision": "fp32"},
            "tracking": "none",
            "doctor": {"enabled": False},
        }
    )
    plan = decide_plan(cfg)
    rows = _rows()
    task = task_from_config(cfg, ["billing", "login", "shipping"])
    tokenizer = _load_tokenizer(cfg)
    model = task.build_model(cfg, plan, tokenizer)
    _no_dropout(model)
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    ds = datasets.Dataset.from_dict(task.tokenize(columns, tokenizer))
    ds = ds.add_column("length", [len(x) for x in ds["input_ids"]])
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = task.build_trainer(
        cfg=cfg, plan=plan, model=model, tokenizer=tokenizer, train_dataset=ds, output_dir=str(tmp_path / "out")
    )
    trainer.train()
    loss = next(h["loss"] for h in trainer.state.log_history if "loss" in h)
    return loss, {n: p.detach() - before[n] for n, p in model.named_parameters()}


def _load_tokenizer(cfg):
    from tunelab.models.tokenizer import load_tokenizer

    return load_tokenizer(cfg)


def _no_dropout(model) -> None:
    # The two runs draw dropout masks in another order; with dropout off only the arithmetic differs.
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0


CASES = [
    pytest.param("bert", "dynamic", id="encoder"),
    pytest.param("qwen3", "dynamic", id="pooled-decoder"),
    pytest.param("qwen3", "packed", id="packed-decoder"),
]


@pytest.mark.parametrize("smoothing", [0.0, 0.1], ids=["plain", "smoothed"])
@pytest.mark.parametrize("model_type,batching", CASES)
def test_accumulation_gives_the_same_loss_and_update_as_one_big_batch(tmp_path, model_type, batching, smoothing):
    big_loss, big = _one_step(tmp_path / "a", model_type, batching, batch=N, accumulation=1, smoothing=smoothing)
    acc_loss, acc = _one_step(tmp_path / "b", model_type, batching, batch=N // 4, accumulation=4, smoothing=smoothing)
    assert acc_loss == pytest.approx(big_loss, rel=1e-4)
    moved = [n for n, d in big.items() if d.abs().max() > 0]
    assert moved, "the step changed nothing"
    for name in moved:
        torch.testing.assert_close(acc[name], big[name], rtol=1e-3, atol=1e-6, msg=f"update of {name}")


@pytest.mark.parametrize("model_type,batching", CASES[:2])
def test_class_weights_reach_the_loss_and_keep_accumulation_exact(tmp_path, model_type, batching):
    plain, _ = _one_step(tmp_path / "p", model_type, batching, batch=N, accumulation=1, smoothing=0.0)
    ones, _ = _one_step(tmp_path / "o", model_type, batching, N, 1, 0.0, weights={"billing": 1.0})
    heavy, _ = _one_step(tmp_path / "h", model_type, batching, N, 1, 0.0, weights={"billing": 5.0})
    assert ones == pytest.approx(plain, rel=1e-6)  # weight 1 is the unweighted loss
    assert heavy > 1.5 * plain  # 6 of 16 rows are billing: the key reaches the loss
    big_loss, big = _one_step(tmp_path / "a", model_type, batching, N, 1, 0.0, weights="balanced")
    acc_loss, acc = _one_step(tmp_path / "b", model_type, batching, N // 4, 4, 0.0, weights="balanced")
    assert acc_loss == pytest.approx(big_loss, rel=1e-4)
    for name, delta in big.items():
        torch.testing.assert_close(acc[name], delta, rtol=1e-3, atol=1e-6, msg=f"update of {name}")
