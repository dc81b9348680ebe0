"""Tiny tokenizers and models built in-process (no Hub): the test-suite's only models.

`tiny_model_dir(tmp, "qwen3")` writes a directory usable as `model.name_or_path` with a
random-init model (hidden 32, 2 layers) and a byte-level BPE tokenizer trained here on Korean
and English text. Everything is deterministic for a given seed.
"""

from __future__ import annotations

import functools
from pathlib import Path

CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "please reset my password, I cannot log in",
    "my card was charged twice for one order",
    "where is my parcel? it has not arrived yet",
    "I want to cancel my subscription today",
    "안녕하세요 반갑습니다 오늘 날씨가 좋네요",
    "회의는 내일 오후 세 시에 시작합니다",
    "배송이 아직 도착하지 않았어요 확인 부탁드립니다",
    "비밀번호를 잊어버렸어요 초기화해 주세요",
    "요약: 두 사람이 저녁 약속을 정했다",
    "#Person1#: 내일 뭐 해? #Person2#: 친구랑 영화 보기로 했어",
    "summary: they agreed to meet at noon",
    "spam ham positive negative neutral yes no",
    "0 1 2 3 4 5 6 7 8 9 , . ? ! : ;",
] * 4

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}{% if m['role'] == 'assistant' %}</s>{% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


@functools.lru_cache(maxsize=8)
def _train_tokenizer_json(vocab_size: int) -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<unk>", "<s>", "</s>", "<|user|>", "<|assistant|>", "<|system|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    return tok.to_str()


def make_tokenizer(
    *,
    vocab_size: int = 600,
    pad: bool = True,
    bos: bool = True,
    chat_template: bool = False,
    emit_token_type_ids: bool = False,
    padding_side: str = "right",
):
    """A PreTrainedTokenizerFast with eos `</s>`; `pad=False` leaves pad_token unset."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_train_tokenizer_json(vocab_size)),
        unk_token="<unk>",
        eos_token="</s>",
        bos_token="<s>" if bos else None,
        pad_token="<pad>" if pad else None,
        padding_side=padding_side,
    )
    if emit_token_type_ids:
        tok.model_input_names = ["input_ids", "token_type_ids", "attention_mask"]
    if chat_template:
        tok.chat_template = CHAT_TEMPLATE
    return tok


def tiny_config(model_type: str, tokenizer, num_labels: int | None = None, **overrides):
    """A transformers config of `model_type` with hidden 32, 2 layers, matching the tokenizer."""
    from transformers import AutoConfig

    vocab = len(tokenizer)
    common = dict(
        vocab_size=vocab,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    if model_type in ("qwen3", "llama", "qwen2", "mistral"):
        kw = dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=512,
            tie_word_embeddings=False,
        )
        if model_type == "qwen3":
            kw["head_dim"] = 8
    elif model_type == "bert":
        kw = dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=512,
            type_vocab_size=2,
        )
    elif model_type == "bart":
        kw = dict(
            d_model=32,
            encoder_layers=2,
            decoder_layers=2,
            encoder_attention_heads=4,
            decoder_attention_heads=4,
            encoder_ffn_dim=64,
            decoder_ffn_dim=64,
            max_position_embeddings=512,
            decoder_start_token_id=tokenizer.eos_token_id,
            forced_eos_token_id=tokenizer.eos_token_id,
        )
    else:
        raise ValueError(model_type)
    kw.update(common)
    if num_labels is not None:
        kw["num_labels"] = num_labels
    kw.update(overrides)
    return AutoConfig.for_model(model_type, **kw)


def tiny_model_dir(
    root: Path,
    model_type: str = "qwen3",
    *,
    head: str = "causal",  # "causal" | "seq2seq" | "classification" | "base"
    num_labels: int | None = None,
    seed: int = 0,
    tokenizer=None,
    **tok_kwargs,
) -> Path:
    """Save a random-init tiny model + tokenizer to `root/<model_type>-<head>` and return the path."""
    import torch
    from transformers import (
        AutoModel,
        AutoModelForCausalLM,
        AutoModelForSeq2SeqLM,
        AutoModelForSequenceClassification,
    )

    tok = tokenizer or make_tokenizer(**tok_kwargs)
    cfg = tiny_config(model_type, tok, num_labels=num_labels)
    torch.manual_seed(seed)
    cls = {
        "causal": AutoModelForCausalLM,
        "seq2seq": AutoModelForSeq2SeqLM,
        "classification": AutoModelForSequenceClassification,
        "base": AutoModel,
    }[head]
    model = cls.from_config(cfg)
    out = Path(root) / f"{model_type}-{head}"
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out
