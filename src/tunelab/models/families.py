"""Model families and what each can do, keyed on `config.model_type` (never on a model's name).

A name says nothing reliable ("my-bert-finetune" may be a Qwen); `config.model_type` is what
transformers itself dispatches on. Unknown types get capabilities inferred from transformers'
own auto-class tables, so a new architecture works without an entry here; an entry only adds
knowledge we have measured (LoRA targets, pooling behaviour).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Attention/MLP projection names per architecture style; models/lora.py resolves "auto" here.
_LLAMA_STYLE = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
_BERT_STYLE = ("query", "key", "value", "dense")
_BART_STYLE = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")
_T5_STYLE = ("q", "k", "v", "o", "wi", "wo", "wi_0", "wi_1")


@dataclass(frozen=True)
class Family:
    model_type: str
    is_encoder_decoder: bool = False
    is_decoder_only: bool = False
    supports_sdpa: bool = True
    lora_target_modules: tuple[str, ...] = ()
    # The stock *ForSequenceClassification head pools the rightmost token that is not
    # pad_token_id (decoders); it picks the wrong token when pad == eos, so we pool by the
    # attention mask instead (models/pooling.py).
    pools_by_pad_id: bool = False
    known: bool = True  # False: capabilities were inferred, not measured

    @property
    def is_encoder_only(self) -> bool:
        return not (self.is_encoder_decoder or self.is_decoder_only)


def _decoder(model_type: str, targets: tuple[str, ...] = _LLAMA_STYLE, **kw: Any) -> Family:
    return Family(model_type, is_decoder_only=True, pools_by_pad_id=True, lora_target_modules=targets, **kw)


def _encoder(model_type: str, targets: tuple[str, ...] = _BERT_STYLE, **kw: Any) -> Family:
    return Family(model_type, lora_target_modules=targets, **kw)


def _seq2seq(model_type: str, targets: tuple[str, ...] = _BART_STYLE, **kw: Any) -> Family:
    return Family(model_type, is_encoder_decoder=True, lora_target_modules=targets, **kw)


FAMILIES: dict[str, Family] = {
    f.model_type: f
    for f in [
        _encoder("bert"),
        _encoder("roberta"),
        _encoder("xlm-roberta"),
        _encoder("electra"),
        _encoder("camembert"),
        _encoder("distilbert", ("q_lin", "k_lin", "v_lin", "out_lin", "lin1", "lin2")),
        _encoder("deberta-v2", ("query_proj", "key_proj", "value_proj", "dense")),
        _encoder("modernbert", ("Wqkv", "Wo", "Wi")),
        _decoder("llama"),
        _decoder("mistral"),
        _decoder("qwen2"),
        _decoder("qwen3"),
        _decoder("gemma"),
        _decoder("gemma2"),
        _decoder("phi3", ("qkv_proj", "o_proj", "gate_up_proj", "down_proj")),
        _decoder("gpt2", ("c_attn", "c_proj", "c_fc")),
        _decoder("gpt_neox", ("query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h")),
        _seq2seq("bart"),
        _seq2seq("mbart"),
        _seq2seq("pegasus"),
        _seq2seq("t5", _T5_STYLE),
        _seq2seq("mt5", _T5_STYLE),
    ]
}


def family_of(config: Any) -> Family:
    """The Family for a transformers config (or a bare model_type string)."""
    model_type = config if isinstance(config, str) else getattr(config, "model_type", None)
    if not model_type:
        raise ValueError("config has no model_type")
    if model_type in FAMILIES:
        return FAMILIES[model_type]
    return _infer(model_type, config if not isinstance(config, str) else None)


def _infer(model_type: str, config: Any | None) -> Family:
    """Capabilities of an unregistered architecture, from transformers' auto-class tables."""
    from transformers.models.auto import modeling_auto as auto

    enc_dec = (
        bool(getattr(config, "is_encoder_decoder", False))
        or model_type in auto.MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES
    )
    # Encoders (BERT-likes) also register a causal-LM head; a masked-LM head is what marks them.
    decoder = (
        not enc_dec
        and model_type in auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
        and model_type not in auto.MODEL_FOR_MASKED_LM_MAPPING_NAMES
    )
    return Family(
        model_type,
        is_encoder_decoder=enc_dec,
        is_decoder_only=decoder,
        pools_by_pad_id=decoder,
        lora_target_modules=(),  # unknown: lora.py falls back to "all-linear"
        known=False,
    )
