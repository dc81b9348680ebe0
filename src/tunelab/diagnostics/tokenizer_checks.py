"""Check 1, tokenizer: pad token, pad == eos per task, padding side, ids inside the embedding, chat
template; and the EOS target of causal/seq2seq tasks (a model that never sees EOS as a target
never learns to stop generating).
"""

from __future__ import annotations

from typing import Any

from tunelab.diagnostics.context import CheckContext
from tunelab.diagnostics.findings import Finding, error, info, warning

EOS_TARGET_MIN_SHARE = 0.5  # below this share of rows ending in a supervised EOS: generation will not stop


def check_tokenizer(ctx: CheckContext) -> list[Finding]:
    tok = ctx.tokenizer
    if tok is None:
        return []
    out = _pad(ctx, tok) + _vocab(ctx, tok) + _chat_template(ctx, tok) + _padding_side(ctx, tok)
    if ctx.kind != "classification":
        out += check_eos_target(ctx)
    return out


def _pad(ctx: CheckContext, tok: Any) -> list[Finding]:
    ev = dict(
        pad_token=tok.pad_token,
        pad_token_id=tok.pad_token_id,
        eos_token=tok.eos_token,
        eos_token_id=tok.eos_token_id,
        task=ctx.kind,
    )
    if tok.pad_token_id is None:
        if ctx.cfg.training.per_device_train_batch_size > 1:
            return [
                error(
                    "tokenizer.pad_missing",
                    "tokenizer has no pad token: batches of more than one sample cannot be padded",
                    "set model.pad_token: add (a dedicated pad token; embeddings are resized)",
                    **ev,
                )
            ]
        return [
            warning(
                "tokenizer.pad_missing",
                "tokenizer has no pad token (batch size 1 only)",
                "set model.pad_token: add",
                **ev,
            )
        ]
    if tok.eos_token_id is None or tok.pad_token_id != tok.eos_token_id:
        return []
    if ctx.kind == "classification":
        if _mask_pooled(ctx.model) or not _pools_by_pad_id(ctx.model):
            return [info("tokenizer.pad_eos", "pad == eos: harmless here (pooling follows the attention mask)", **ev)]
        return [
            warning(
                "tokenizer.pad_eos",
                "pad == eos with a head that pools the last non-pad token: a trailing EOS is "
                "skipped and the token before it is pooled",
                "set model.pad_token: add, or pool by attention mask",
                **ev,
            )
        ]
    return [
        warning(
            "tokenizer.pad_eos",
            "pad == eos on a generative task: any collator that masks pad ids in the labels also "
            "masks the EOS target (see tokenizer.eos_target)",
            "set model.pad_token: add (a dedicated pad token)",
            **ev,
        )
    ]


def _mask_pooled(model: Any) -> bool:
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return bool(getattr(type(inner), "_tunelab_mask_pooling", False))


def _pools_by_pad_id(model: Any) -> bool:
    """Stock decoder classifiers pool the rightmost non-pad token (a `score` head)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = getattr(inner, "config", None)
    return config is not None and not getattr(config, "is_encoder_decoder", False) and hasattr(inner, "score")


def _embedding_rows(model: Any) -> int | None:
    get = getattr(model, "get_input_embeddings", None)
    emb = get() if callable(get) else None
    return int(emb.weight.shape[0]) if emb is not None and hasattr(emb, "weight") else None


def _vocab(ctx: CheckContext, tok: Any) -> list[Finding]:
    rows = _embedding_rows(ctx.model)
    if rows is None:
        return []
    special = [i for i in getattr(tok, "all_special_ids", []) if i is not None]
    max_special = max(special, default=-1)
    ids = ctx.column("input_ids") or []
    max_data = max((max(r) for r in ids if len(r)), default=-1)
    ev = dict(embedding_rows=rows, tokenizer_len=len(tok), max_special_id=max_special, max_input_id=max_data)
    if max(max_special, max_data) >= rows:
        return [
            error(
                "tokenizer.vocab",
                "token ids beyond the embedding matrix (index error / garbage embeddings)",
                "resize the embeddings after adding tokens (model.resize_token_embeddings(len(tokenizer)))",
                **ev,
            )
        ]
    if len(tok) > rows:
        return [
            warning(
                "tokenizer.vocab",
                "tokenizer has more tokens than the embedding matrix has rows",
                "resize the embeddings to len(tokenizer)",
                **ev,
            )
        ]
    return []


def _chat_template(ctx: CheckContext, tok: Any) -> list[Finding]:
    if not ctx.cfg.task.wants_chat_template() or ctx.kind != "causal":
        return []
    if getattr(tok, "chat_template", None):
        return [info("tokenizer.chat_template", "chat template present and used for prompts")]
    return [
        warning(
            "tokenizer.chat_template",
            "task.use_chat_template is true but the tokenizer has no chat template: "
            "prompts fall back to task.prompt_template (an instruct model sees an unfamiliar format)",
            "use the instruct model's tokenizer (it ships the template), or set task.use_chat_template: false",
            model=ctx.cfg.model.name_or_path,
        )
    ]


def _padding_side(ctx: CheckContext, tok: Any) -> list[Finding]:
    if ctx.kind != "causal":
        return []
    return [
        info(
            "tokenizer.padding_side",
            f"training pads {tok.padding_side}; batched generate on a decoder must pad left "
            "(inference switches to left padding)",
            padding_side=tok.padding_side,
        )
    ]


def check_eos_target(ctx: CheckContext) -> list[Finding]:
    """Share of training rows whose last supervised target token is EOS."""
    tok = ctx.tokenizer
    eos = getattr(tok, "eos_token_id", None)
    labels = ctx.column("labels")
    source = "labels"
    if not labels or not isinstance(labels[0], (list, tuple)):
        labels, source = ctx.column("input_ids"), "input_ids"  # SFT data without labels: the trainer copies input_ids
    if eos is None or not labels:
        return []
    ends = [_last_supervised(row) for row in labels]
    share = sum(e == eos for e in ends) / len(ends)
    pad_is_eos = tok.pad_token_id == eos
    ev = dict(
        rows=len(ends), share_ending_in_eos=round(share, 4), eos_token_id=eos, pad_is_eos=pad_is_eos, source=source
    )
    if share >= EOS_TARGET_MIN_SHARE:
        return [info("tokenizer.eos_target", f"{share:.0%} of targets end with EOS", **ev)]
    cause = (
        "pad == eos and the pad positions were set to -100, which also masked the real EOS"
        if pad_is_eos
        else "the target text is not followed by EOS, or its EOS was masked to -100"
    )
    return [
        error(
            "tokenizer.eos_target",
            f"only {share:.0%} of training targets end with a supervised EOS: the model will not learn "
            f"to stop ({cause})",
            "append tokenizer.eos_token to every target and keep it in the labels; use a dedicated pad "
            "token (model.pad_token: add) so masking pads never masks EOS",
            **ev,
        )
    ]


def _last_supervised(row: Any) -> int | None:
    for value in reversed(list(row)):
        if value != -100:
            return int(value)
    return None
