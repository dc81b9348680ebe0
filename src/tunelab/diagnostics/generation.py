"""Generation inputs: `token_type_ids` headed for `generate` on a decoder.

Some tokenizers (BERT-style vocabularies reused for a decoder, or a tokenizer whose
`model_input_names` lists them) emit token_type_ids. A decoder's forward does not name them (its
**kwargs swallow them during training) and `generate(**tokenizer(...))` then fails with
"model_kwargs are not used by the model" -- after a whole training run, at prediction time. We
check the tokenizer's output against the model's forward signature and confirm with a one-token
generate.
"""

from __future__ import annotations

from typing import Any

from tunelab.diagnostics.batches import forward_params, model_device
from tunelab.diagnostics.context import CheckContext
from tunelab.diagnostics.findings import Finding, warning

PROBE_TEXT = "hello"


def check_generate_inputs(ctx: CheckContext) -> list[Finding]:
    if ctx.kind != "causal" or ctx.model is None or ctx.tokenizer is None:
        return []
    enc = ctx.tokenizer(PROBE_TEXT, return_tensors="pt")
    if "token_type_ids" not in enc or "token_type_ids" in forward_params(ctx.model):
        return []
    failure = _try_generate(ctx.model, enc)
    ev = dict(
        model_type=getattr(ctx.model.config, "model_type", None),
        tokenizer_inputs=list(enc.keys()),
        generate_error=failure,
    )
    if failure is None:  # this transformers version drops them itself: nothing to fix
        return []
    # tunelab's own inference/generation passes only input_ids + attention_mask, so `tunelab
    # predict` works; the saved tokenizer still breaks the usual `generate(**tokenizer(text))`
    # of anyone using the exported model (and training's forward swallows them silently).
    return [
        warning(
            "generate.token_type_ids",
            "the tokenizer emits token_type_ids, which this decoder's generate rejects "
            "('model_kwargs are not used by the model'): `tunelab predict` drops them, but the exported "
            "model + tokenizer fail with the usual model.generate(**tokenizer(text))",
            "set tokenizer.model_input_names = ['input_ids', 'attention_mask'] before saving "
            "(or encode prompts with return_token_type_ids=False)",
            **ev,
        )
    ]


def _try_generate(model: Any, enc: Any) -> str | None:
    import torch

    device = model_device(model)
    inputs = {k: v.to(device) for k, v in enc.items()}
    try:
        with torch.no_grad():
            model.generate(**inputs, max_new_tokens=1, do_sample=False)
    except (ValueError, TypeError) as exc:
        return str(exc).splitlines()[0][:200]
    return None
