"""Batching strategies: choice of `auto`, collators, and loss parity of every strategy with padding."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")

from tiny import make_tokenizer, tiny_config  # noqa: E402
from tunelab.data.batching import (  # noqa: E402
    AUTO_FALLBACK,
    PackedClassificationCollator,
    make_collator,
    padding_stats,
    resolve_strategy,
    supports_packing,
    trainer_overrides,
)
from tunelab.errors import ConfigError  # noqa: E402
from tunelab.models.pooling import enable_mask_pooling  # noqa: E402

MAX_LEN = 24


def _cfg(batching):
    return SimpleNamespace(data=SimpleNamespace(batching=batching))


def _plan(varlen):
    return SimpleNamespace(
        varlen_attention=varlen,
        attn_implementation="flash_attention_2" if varlen else "sdpa",
        device="cuda" if varlen else "cpu",
    )


def _classifier(tok, seed=0):
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(tiny_config("qwen3", tok, num_labels=4)).eval()
    return enable_mask_pooling(model)


def _causal_lm(tok, seed=0):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(tiny_config("qwen3", tok)).eval()


def _rows(n=6, seed=0, causal=False):
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        ids = [rng.randrange(10, 600) for _ in range(rng.randint(2, MAX_LEN))]
        if causal:
            prompt = rng.randint(1, len(ids) - 1)
            labels = [-100] * prompt + ids[prompt:]  # completion-only loss, as SFT does
        else:
            labels = rng.randrange(4)
        # Extra columns the Trainer keeps (remove_unused_columns=False): collators must drop them.
        rows.append(
            {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels, "length": len(ids), "id": f"r{i}"}
        )
    return rows


# ------------------------------------------------------------------------------ the choice
def test_auto_is_grouped_without_varlen_kernel_and_packed_with_one():
    tok = make_tokenizer()
    clf = _classifier(tok)
    strategy, reason = resolve_strategy(_cfg("auto"), _plan(False), clf)
    assert strategy == AUTO_FALLBACK and "no varlen kernel" in reason
    strategy, reason = resolve_strategy(_cfg("auto"), _plan(True), clf)
    assert strategy == "packed" and "varlen" in reason
    assert resolve_strategy(_cfg("auto"), _plan(True), None)[0] == AUTO_FALLBACK  # unknown model: never pack
    assert resolve_strategy(_cfg("dynamic"), _plan(True), clf) == ("dynamic", "data.batching: dynamic (requested)")


def test_packing_refused_for_models_that_cannot_pack():
    from transformers import AutoModelForSequenceClassification

    tok = make_tokenizer()
    bert = AutoModelForSequenceClassification.from_config(tiny_config("bert", tok, num_labels=3))
    stock_decoder = AutoModelForSequenceClassification.from_config(tiny_config("qwen3", tok, num_labels=3))
    assert not supports_packing(bert) and not supports_packing(stock_decoder)  # stock pooling: one row per pack
    assert supports_packing(_causal_lm(tok)) and supports_packing(_classifier(tok))
    with pytest.raises(ConfigError, match="packed is not supported"):
        resolve_strategy(_cfg("packed"), _plan(False), bert)
    assert resolve_strategy(_cfg("auto"), _plan(True), bert)[0] == AUTO_FALLBACK


def test_trainer_overrides_keep_length_column_for_grouping():
    assert trainer_overrides("grouped")["train_sampling_strategy"] == "group_by_length"
    assert trainer_overrides("dynamic")["train_sampling_strategy"] == "random"
    assert trainer_overrides("packed")["remove_unused_columns"] is False


# -------------------------------------------------------------------------------- collators
def test_packed_classification_collator_layout():
    rows = [
        {"input_ids": [5, 6, 7], "labels": 2, "id": "a"},
        {"input_ids": [8], "labels": 0, "id": "b"},
        {"input_ids": [9, 10], "labels": 1, "id": "c"},
    ]
    batch = PackedClassificationCollator(varlen_attention=True)(rows)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9, 10]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 0, 1]]
    assert batch["labels"].tolist() == [2, 0, 1] and "attention_mask" not in batch
    assert batch["cu_seq_lens_q"].tolist() == [0, 3, 4, 6] and batch["max_length_q"] == 3
    assert padding_stats(batch) == (6, 6)


def test_max_length_and_dynamic_padding_widths():
    tok = make_tokenizer()
    rows = _rows()
    longest = max(len(r["input_ids"]) for r in rows)
    fixed = make_collator("max_length", tok, "classification", MAX_LEN)(rows)
    dyn = make_collator("grouped", tok, "classification", MAX_LEN)(rows)
    assert fixed["input_ids"].shape == (len(rows), MAX_LEN) and dyn["input_ids"].shape == (len(rows), longest)
    real = sum(len(r["input_ids"]) for r in rows)
    assert padding_stats(fixed) == (real, len(rows) * MAX_LEN)
    assert set(dyn) == {"input_ids", "attention_mask", "labels"}  # length/id dropped


def test_grouped_sampling_pads_far_less_than_random():
    # The exact sampler the Trainer uses for train_sampling_strategy="group_by_length".
    from transformers.trainer_pt_utils import get_length_grouped_indices

    rng = random.Random(0)
    lengths = [min(300, int(rng.lognormvariate(4.5, 0.6))) + 1 for _ in range(4000)]
    bs = 16

    def efficiency(order):
        batches = [order[i : i + bs] for i in range(0, len(order), bs)]
        return sum(sum(lengths[j] for j in b) for b in batches) / sum(
            len(b) * max(lengths[j] for j in b) for b in batches
        )

    grouped = efficiency(get_length_grouped_indices(lengths, bs, generator=torch.Generator().manual_seed(0)))
    shuffled = efficiency(rng.sample(range(len(lengths)), len(lengths)))
    assert grouped > 0.95 and shuffled < 0.7


# ------------------------------------------------------------------------- loss parity
@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_classification_loss_and_grads_equal_across_strategies(padding_side):
    tok = make_tokenizer(padding_side=padding_side)
    model = _classifier(tok)
    rows = _rows(seed=3)
    results = {}
    for strategy in ("max_length", "dynamic", "packed"):
        model.zero_grad()
        out = model(**make_collator(strategy, tok, "classification", MAX_LEN)(rows))
        out.loss.backward()
        results[strategy] = (out.loss.detach(), out.logits.detach(), model.score.weight.grad.clone())
    ref_loss, ref_logits, ref_grad = results["dynamic"]
    for strategy in ("max_length", "packed"):
        loss, logits, grad = results[strategy]
        torch.testing.assert_close(loss, ref_loss, atol=1e-5, rtol=0)
        torch.testing.assert_close(logits, ref_logits, atol=1e-5, rtol=0)
        torch.testing.assert_close(grad, ref_grad, atol=1e-5, rtol=1e-4)


def test_causal_lm_packed_loss_equals_padded_token_mean():
    tok = make_tokenizer()
    model = _causal_lm(tok)
    rows = _rows(seed=5, causal=True)
    with torch.no_grad():
        padded = model(**make_collator("dynamic", tok, "causal_lm", MAX_LEN)(rows), use_cache=False).loss
        fixed = model(**make_collator("max_length", tok, "causal_lm", MAX_LEN)(rows), use_cache=False).loss
        packed_batch = make_collator("packed", tok, "causal_lm", MAX_LEN)(rows)
        packed = model(**packed_batch, use_cache=False).loss
        # The reference by hand: every sample alone, summed token losses over all label tokens.
        total, count = 0.0, 0
        for r in rows:
            logits = model(input_ids=torch.tensor([r["input_ids"]]), use_cache=False).logits[0, :-1]
            target = torch.tensor(r["labels"][1:])
            total += torch.nn.functional.cross_entropy(logits, target, ignore_index=-100, reduction="sum")
            count += int((target != -100).sum())
    assert "attention_mask" not in packed_batch and packed_batch["input_ids"].shape[0] == 1
    torch.testing.assert_close(padded, total / count, atol=1e-5, rtol=0)
    torch.testing.assert_close(fixed, padded, atol=1e-5, rtol=0)
    torch.testing.assert_close(packed, padded, atol=1e-5, rtol=0)
