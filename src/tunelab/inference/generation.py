"""Batched text generation for the generative tasks (summarization, sft).

`model.generate` does the decoding; what we add is the batching policy around it:
- rows are generated in length order (longest first: an out-of-memory shows up on the first
  batch, and similar lengths waste little padding) and returned in input order;
- decoders are padded on the LEFT (generation appends on the right; right padding would put
  pad tokens between prompt and answer). The tokenizer's padding_side is set for the call and
  restored afterwards, so training code keeps its right padding;
- only input_ids + attention_mask reach `generate` (a tokenizer that emits token_type_ids
  would otherwise make decoders fail: they have no token-type embeddings);
- decoders echo the prompt: the first `input_len` output positions are sliced off;
- special tokens are dropped and whitespace normalised in the returned text.
All `inference.generation` settings go through one `transformers.GenerationConfig`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase

    from tunelab.config.schema import GenerationConfig as GenerationSettings


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    """EOS ids from the model's generation config (chat models add end-of-turn ids) and the tokenizer."""
    ids: list[int] = []
    model_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for value in (model_eos, tokenizer.eos_token_id):
        for i in value if isinstance(value, (list, tuple)) else [value]:
            if i is not None and int(i) not in ids:
                ids.append(int(i))
    return ids


def build_generation_config(settings: GenerationSettings, model: Any, tokenizer: Any) -> GenerationConfig:
    """A fresh GenerationConfig from our settings plus the model's special-token ids.

    Fresh rather than a copy of `model.generation_config`: chat models ship sampling defaults
    (temperature 0.6, top_p 0.9) that would silently override a greedy `do_sample: false`.
    Sampling knobs are passed only with `do_sample`, beam knobs only with `num_beams > 1`:
    transformers flags the others as invalid combinations. (What we leave unset, `generate`
    still fills from the model's own generation config, e.g. `suppress_tokens`.)
    """
    from transformers import GenerationConfig

    base = getattr(model, "generation_config", None)
    kw: dict[str, Any] = {
        "max_new_tokens": settings.max_new_tokens,
        "min_new_tokens": settings.min_new_tokens,
        "num_beams": settings.num_beams,
        "do_sample": settings.do_sample,
        "repetition_penalty": settings.repetition_penalty,
        "no_repeat_ngram_size": settings.no_repeat_ngram_size,
        "eos_token_id": _eos_ids(model, tokenizer) or None,
        "pad_token_id": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
    }
    if settings.do_sample:
        kw.update(temperature=settings.temperature, top_p=settings.top_p, top_k=settings.top_k)
    if settings.num_beams > 1:
        kw.update(length_penalty=settings.length_penalty, early_stopping=settings.early_stopping)
    for key in ("bos_token_id", "decoder_start_token_id", "forced_bos_token_id", "forced_eos_token_id"):
        value = getattr(base, key, None) if base is not None else None
        if value is None and key == "decoder_start_token_id":
            value = getattr(model.config, "decoder_start_token_id", None)
        if value is not None:
            kw[key] = value
    return GenerationConfig(**{k: v for k, v in kw.items() if v is not None})


def clean_text(text: str) -> str:
    """Whitespace-normalised text (runs of spaces/newlines -> one space, stripped).

    U+FFFD is dropped too: a byte-level BPE model can stop inside a multi-byte character (a
    Hangul syllable is 3 bytes), which decodes to a replacement character, never real output.
    """
    return " ".join(text.replace("\ufffd", " ").split())


def _pad_batch(tokenizer: Any, rows: Sequence[Sequence[int]], side: str) -> dict[str, Any]:
    old = tokenizer.padding_side
    tokenizer.padding_side = side
    try:
        batch = tokenizer.pad({"input_ids": [list(r) for r in rows]}, padding=True, return_tensors="pt")
    finally:
        tokenizer.padding_side = old  # training code relies on right padding
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


def generate_from_ids(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[Sequence[int]],
    settings: GenerationSettings,
    batch_size: int,
    *,
    description: str = "generating",
    return_ids: bool = False,
    plan: Any = None,
) -> list[Any]:
    """Generate one text per prompt (token ids, no padding); results in input order.

    With the run's `plan`, inputs go to the plan's device and decoding runs under its autocast.
    """
    import contextlib

    import torch

    from tunelab import ui
    from tunelab.inference.ordered import autocast, length_order, model_device

    if tokenizer.pad_token_id is None and tokenizer.eos_token_id is None:
        from tunelab.errors import ModelError

        raise ModelError(
            "the tokenizer has neither a pad nor an eos token; cannot batch generation", hint="set model.pad_token: add"
        )
    gen_cfg = build_generation_config(settings, model, tokenizer)
    is_enc_dec = bool(getattr(model.config, "is_encoder_decoder", False))
    side = "right" if is_enc_dec else "left"
    device = model_device(model, plan) if plan is not None else next(model.parameters()).device
    amp = autocast(plan) if plan is not None else contextlib.nullcontext()
    order = [int(i) for i in length_order([len(p) for p in prompts])]
    out: list[Any] = [None] * len(prompts)
    was_training = model.training
    model.eval()
    try:
        with ui.progress(unit="rows", transient=True) as progress, torch.inference_mode(), amp:
            bar = progress.add_task(description, total=len(prompts))
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                batch = {k: v.to(device) for k, v in _pad_batch(tokenizer, [prompts[i] for i in idx], side).items()}
                generated = model.generate(**batch, generation_config=gen_cfg)
                if not is_enc_dec:  # decoders return prompt + answer; left padding aligns every prompt end
                    generated = generated[:, batch["input_ids"].shape[1] :]
                for row, ids in zip(idx, generated.tolist()):
                    out[row] = ids if return_ids else clean_text(tokenizer.decode(ids, skip_special_tokens=True))
                progress.advance(bar, len(idx))
    finally:
        model.train(was_training)
    return out


def sequence_logprobs(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompt: Sequence[int],
    completions: Sequence[Sequence[int]],
) -> list[float]:
    """Sum of log p(completion | prompt) for each completion (decoder-only or encoder-decoder)."""
    import torch

    device = next(model.parameters()).device
    is_enc_dec = bool(getattr(model.config, "is_encoder_decoder", False))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    width = max(len(c) for c in completions)
    labels = torch.full((len(completions), width), -100, dtype=torch.long)
    for i, comp in enumerate(completions):
        labels[i, : len(comp)] = torch.tensor(list(comp))
    with torch.inference_mode():
        if is_enc_dec:
            enc = torch.tensor([list(prompt)] * len(completions), device=device)
            logits = model(input_ids=enc, attention_mask=torch.ones_like(enc), labels=labels.to(device)).logits
            target = labels.to(device)
        else:
            seq = torch.full((len(completions), len(prompt) + width), pad, dtype=torch.long)
            mask = torch.zeros_like(seq)
            for i, comp in enumerate(completions):
                n = len(prompt) + len(comp)
                seq[i, :n] = torch.tensor(list(prompt) + list(comp))
                mask[i, :n] = 1
            logits = model(input_ids=seq.to(device), attention_mask=mask.to(device)).logits
            # position t predicts token t+1: the completion starts at len(prompt)
            logits = logits[:, len(prompt) - 1 : len(prompt) - 1 + width]
            target = labels.to(device)
        logp = torch.log_softmax(logits.float(), dim=-1)
        keep = target != -100
        tok_lp = logp.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1) * keep
        return tok_lp.sum(-1).tolist()
