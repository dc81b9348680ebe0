#!/usr/bin/env python
"""Write tiny random-init models + a tokenizer to examples/models/ for offline trials.

    python scripts/make_dialogue_data.py      # examples/data/*.csv first (the tokenizer is trained on it)
    python scripts/make_tiny_models.py [--out examples/models] [--types bart qwen3 llama]

Each model directory (`bart-seq2seq`, `qwen3-causal`, `llama-causal`) is usable as
`model.name_or_path`: hidden size 64, 2 layers, a byte-level BPE tokenizer trained here on the
example data (Korean + English), eos `</s>`, pad `<pad>`; the decoders carry a small chat
template. Nothing is downloaded. The models are random: they show that the pipeline runs end to
end (and learn the toy data a little), not how good a real model would be. Same logic as
tests/tiny.py, which is not installed with the package.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

SPECIALS = ["<pad>", "<unk>", "<s>", "</s>", "<|user|>", "<|assistant|>", "<|system|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}{% if m['role'] == 'assistant' %}</s>{% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def corpus(data_dir: Path) -> list[str]:
    texts = ["Summarize the dialogue.", "Summary:", "spam ham"]
    for path in sorted(data_dir.glob("*.csv")):
        with open(path, encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                texts.extend(v for k, v in row.items() if k != "id" and v)
    if len(texts) < 10:
        raise SystemExit(f"no example data in {data_dir}: run scripts/make_dialogue_data.py first")
    return texts


def make_tokenizer(texts: list[str], vocab_size: int, chat: bool):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIALS,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", eos_token="</s>", bos_token="<s>", pad_token="<pad>"
    )
    if chat:
        fast.chat_template = CHAT_TEMPLATE
    return fast


def model_config(model_type: str, tok, hidden: int = 64, layers: int = 2):
    from transformers import AutoConfig

    common = dict(
        vocab_size=len(tok), pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id
    )
    if model_type == "bart":
        kw = dict(
            d_model=64,
            encoder_layers=2,
            decoder_layers=2,
            encoder_attention_heads=4,
            decoder_attention_heads=4,
            encoder_ffn_dim=128,
            decoder_ffn_dim=128,
            max_position_embeddings=512,
            decoder_start_token_id=tok.eos_token_id,
            forced_eos_token_id=tok.eos_token_id,
        )
    else:
        kw = dict(
            hidden_size=hidden,
            intermediate_size=2 * hidden,
            num_hidden_layers=layers,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=512,
            tie_word_embeddings=False,
        )
        if model_type == "qwen3":
            kw["head_dim"] = hidden // 4
    return AutoConfig.for_model(model_type, **kw, **common)


def main(
    out: Path,
    data_dir: Path,
    types: list[str],
    vocab_size: int = 1000,
    seed: int = 0,
    hidden: int = 64,
    layers: int = 2,
) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    texts = corpus(data_dir)
    for model_type in types:
        seq2seq = model_type == "bart"
        tok = make_tokenizer(texts, vocab_size, chat=not seq2seq)
        torch.manual_seed(seed)
        cls = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
        model = cls.from_config(model_config(model_type, tok, hidden, layers))
        target = out / f"{model_type}-{'seq2seq' if seq2seq else 'causal'}"
        target.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(target, safe_serialization=True)
        tok.save_pretrained(target)
        print(f"{target}: {model_type}, {sum(p.numel() for p in model.parameters()):,} parameters, vocab {len(tok)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("examples/models"))
    parser.add_argument("--data", type=Path, default=Path("examples/data"))
    parser.add_argument("--types", nargs="+", default=["bart", "qwen3", "llama"], choices=["bart", "qwen3", "llama"])
    # Bigger decoders (e.g. --hidden 256 --layers 4) make CPU steps compute-bound, as real models are:
    # the `tunelab diff` walkthrough in the README uses them.
    parser.add_argument("--hidden", type=int, default=64, help="hidden size of the decoders (qwen3, llama)")
    parser.add_argument("--layers", type=int, default=2, help="decoder layers (qwen3, llama)")
    a = parser.parse_args()
    main(a.out, a.data, a.types, hidden=a.hidden, layers=a.layers)
