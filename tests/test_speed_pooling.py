"""Last-real-token pooling (padded, left/right, pad == eos) and per-segment pooling of packed rows."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from tiny import make_tokenizer, tiny_config  # noqa: E402
from tunelab.errors import ModelError  # noqa: E402
from tunelab.models.pooling import enable_mask_pooling, last_token_indices  # noqa: E402

NUM_LABELS = 5


def _model(model_type="qwen3", attn="sdpa", pad_is_eos=False, seed=0, label_smoothing=0.0):
    from transformers import AutoModelForSequenceClassification

    tok = make_tokenizer()
    cfg = tiny_config(model_type, tok, num_labels=NUM_LABELS)
    if pad_is_eos:
        cfg.pad_token_id = tok.eos_token_id
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(cfg, attn_implementation=attn)
    model.eval()
    return enable_mask_pooling(model, label_smoothing=label_smoothing)


def _samples(lengths, vocab=600, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(10, vocab, (n,), generator=g) for n in lengths]


def _padded(seqs, side, pad_id=0):
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        sl = slice(0, len(s)) if side == "right" else slice(width - len(s), width)
        ids[i, sl], mask[i, sl] = s, 1
    return ids, mask


def _packed(seqs):
    ids = torch.cat(seqs).unsqueeze(0)
    pos = torch.cat([torch.arange(len(s)) for s in seqs]).unsqueeze(0)
    return ids, pos


# ------------------------------------------------------------------- index arithmetic only
def test_indices_right_and_left_padding():
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 1, 1, 1], [0, 0, 0, 0, 1]])
    rows, cols = last_token_indices(attention_mask=mask)
    assert rows.tolist() == [0, 1, 2, 3]
    assert cols.tolist() == [2, 4, 4, 4]


def test_indices_pad_equals_eos_trailing_eos():
    # eos == pad == 3: sample 0 is "5 6 </s>" + padding; the stock rule pools index 1 ("6").
    ids = torch.tensor([[5, 6, 3, 3, 3], [7, 8, 9, 4, 3]])
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    _, cols = last_token_indices(attention_mask=mask)
    assert cols.tolist() == [2, 4]
    assert ids[0, cols[0]].item() == 3  # the EOS itself


def test_indices_packed_segments_position_ids_and_cu_seqlens():
    pos = torch.tensor([[0, 1, 2, 0, 1, 0, 1, 2, 3]])
    rows, cols = last_token_indices(position_ids=pos)
    assert rows.tolist() == [0, 0, 0] and cols.tolist() == [2, 4, 8]
    _, cols_cu = last_token_indices(cu_seqlens=torch.tensor([0, 3, 5, 9], dtype=torch.int32))
    assert cols_cu.tolist() == [2, 4, 8]
    # Two packed rows: row-major order, a one-token segment included.
    rows2, cols2 = last_token_indices(position_ids=torch.tensor([[0, 1, 0, 1], [0, 0, 1, 2]]))
    assert list(zip(rows2.tolist(), cols2.tolist())) == [(0, 1), (0, 3), (1, 0), (1, 3)]


# ------------------------------------------------------------------------ through a model
@pytest.mark.parametrize("model_type", ["qwen3", "llama"])
def test_class_name_kept_and_saved_model_reloads_stock(model_type, tmp_path):
    from transformers import AutoModelForSequenceClassification

    model = _model(model_type)
    stock = {"qwen3": "Qwen3ForSequenceClassification", "llama": "LlamaForSequenceClassification"}[model_type]
    assert type(model).__name__ == stock  # the Trainer picks the classification loss by this name
    assert enable_mask_pooling(model) is model and type(model).__mro__[1].__name__ == "_MaskPoolingMixin"
    model.save_pretrained(tmp_path)
    again = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert type(again).__name__ == stock and not getattr(type(again), "_tunelab_mask_pooling", False)


def test_refuses_a_model_without_decoder_score_head():
    from transformers import AutoModelForSequenceClassification

    bert = AutoModelForSequenceClassification.from_config(tiny_config("bert", make_tokenizer(), num_labels=3))
    with pytest.raises(ModelError, match="not a decoder sequence classifier"):
        enable_mask_pooling(bert)


def test_pad_equals_eos_pools_the_trailing_eos():
    model = _model(pad_is_eos=True)
    eos = model.config.pad_token_id
    a = torch.cat([_samples([6])[0], torch.tensor([eos])])
    b = torch.cat([_samples([3], seed=2)[0], torch.tensor([eos])])
    ids, mask = _padded([a, b], "right", pad_id=eos)
    with torch.no_grad():
        batch = model(input_ids=ids, attention_mask=mask).logits
        alone = model(input_ids=b.unsqueeze(0), attention_mask=torch.ones(1, len(b), dtype=torch.long)).logits
        before_eos = model(
            input_ids=b[:-1].unsqueeze(0), attention_mask=torch.ones(1, len(b) - 1, dtype=torch.long)
        ).logits
    torch.testing.assert_close(batch[1], alone[0], atol=1e-5, rtol=0)
    assert not torch.allclose(alone[0], before_eos[0], atol=1e-4)  # the stock rule's answer differs


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("side", ["right", "left"])
def test_packed_logits_and_loss_equal_padded_path(side, attn):
    model = _model(attn=attn, label_smoothing=0.1)
    seqs = _samples([7, 3, 12, 1, 9])
    labels = torch.tensor([0, 4, 2, 1, 3])
    ids, mask = _padded(seqs, side)
    pids, pos = _packed(seqs)
    with torch.no_grad():
        padded = model(input_ids=ids, attention_mask=mask, labels=labels)
        packed = model(input_ids=pids, position_ids=pos, labels=labels)
    assert packed.logits.shape == (len(seqs), NUM_LABELS)  # one row per segment, not per packed row
    torch.testing.assert_close(packed.logits, padded.logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(packed.loss, padded.loss, atol=1e-5, rtol=0)
    expected = torch.nn.functional.cross_entropy(padded.logits, labels, label_smoothing=0.1)
    torch.testing.assert_close(padded.loss, expected, atol=1e-6, rtol=0)


def test_left_and_right_padding_give_the_same_logits():
    model = _model()
    seqs = _samples([4, 10, 6])
    with torch.no_grad():
        right = model(*_padded(seqs, "right")[:1], attention_mask=_padded(seqs, "right")[1]).logits
        left = model(*_padded(seqs, "left")[:1], attention_mask=_padded(seqs, "left")[1]).logits
    torch.testing.assert_close(left, right, atol=1e-5, rtol=0)


def test_no_attention_across_packed_boundaries():
    model = _model()
    a, b, c = _samples([6, 5, 4])
    pids, pos = _packed([a, b, c])
    changed = pids.clone()
    changed[0, : len(a)] = torch.randint(10, 600, (len(a),), generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        before = model(input_ids=pids, position_ids=pos).logits
        after = model(input_ids=changed, position_ids=pos).logits
        # The model's config says use_cache=True: it must be ignored, or packing breaks silently.
        cached = model(input_ids=pids, position_ids=pos, use_cache=True).logits
    assert not torch.allclose(before[0], after[0], atol=1e-4)  # segment A did change
    torch.testing.assert_close(after[1:], before[1:], atol=1e-6, rtol=0)  # B and C did not
    torch.testing.assert_close(cached, before, atol=0, rtol=0)


def test_loss_divides_by_num_items_in_batch_and_skips_ignored_labels():
    model = _model()
    seqs = _samples([5, 6, 7, 8])
    ids, mask = _padded(seqs, "right")
    labels = torch.tensor([1, 2, -100, 3])
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, labels=labels)
        summed = model(input_ids=ids, attention_mask=mask, labels=labels, num_items_in_batch=torch.tensor(6))
    keep = labels != -100
    per = torch.nn.functional.cross_entropy(out.logits[keep], labels[keep], reduction="none")
    torch.testing.assert_close(out.loss, per.mean(), atol=1e-6, rtol=0)
    torch.testing.assert_close(summed.loss, per.sum() / 6, atol=1e-6, rtol=0)
    assert type(model).accepts_loss_kwargs is True
