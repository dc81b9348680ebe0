"""inference/generation.py: batching, left padding, prompt stripping, settings, token_type_ids."""

from __future__ import annotations

import pytest

from tiny import make_tokenizer, tiny_model_dir
from tunelab.config.schema import GenerationConfig as Settings
from tunelab.inference.generation import build_generation_config, clean_text, generate_from_ids


def _causal(tmp_path, model_type="llama", **tok_kwargs):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = tiny_model_dir(tmp_path, model_type, head="causal", **tok_kwargs)
    return AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)


PROMPTS_TEXT = ["안녕하세요 반갑습니다 오늘 날씨가 좋네요", "spam", "회의는 내일 오후 세 시에 시작합니다 summary:"]


@pytest.mark.parametrize("model_type", ["llama", "qwen3"])
def test_batched_left_padded_generation_equals_one_by_one(tmp_path, model_type):
    model, tok = _causal(tmp_path, model_type)
    prompts = [tok(t, add_special_tokens=False)["input_ids"] for t in PROMPTS_TEXT]
    settings = Settings(max_new_tokens=6)
    batched = generate_from_ids(model, tok, prompts, settings, batch_size=3, return_ids=True)
    single = [generate_from_ids(model, tok, [p], settings, batch_size=1, return_ids=True)[0] for p in prompts]
    assert batched == single  # left padding + mask: padding does not change greedy output
    assert tok.padding_side == "right"  # restored after the call
    # the prompt is stripped: every output is only new tokens (at most max_new_tokens)
    assert all(len(ids) <= 6 for ids in batched)


def test_token_type_ids_tokenizer_does_not_break_generation(tmp_path):
    model, _ = _causal(tmp_path, "llama")
    tok = make_tokenizer(emit_token_type_ids=True)
    assert "token_type_ids" in tok("hello")  # the tokenizer does emit them
    prompts = [tok("hello there")["input_ids"], tok("회의는 내일")["input_ids"]]
    out = generate_from_ids(model, tok, prompts, Settings(max_new_tokens=4), batch_size=2)
    assert len(out) == 2 and all(isinstance(t, str) for t in out)


def test_encoder_decoder_generation_in_input_order(tmp_path):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    path = tiny_model_dir(tmp_path, "bart", head="seq2seq")
    model, tok = AutoModelForSeq2SeqLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    prompts = [tok(t)["input_ids"] for t in PROMPTS_TEXT]
    settings = Settings(max_new_tokens=5, num_beams=2)
    batched = generate_from_ids(model, tok, prompts, settings, batch_size=2)
    single = [generate_from_ids(model, tok, [p], settings, batch_size=1)[0] for p in prompts]
    assert batched == single


def test_all_settings_reach_the_generation_config(tmp_path):
    model, tok = _causal(tmp_path)
    s = Settings(
        max_new_tokens=11,
        min_new_tokens=2,
        num_beams=3,
        do_sample=True,
        temperature=0.7,
        top_p=0.9,
        top_k=7,
        repetition_penalty=1.3,
        length_penalty=0.5,
        no_repeat_ngram_size=2,
        early_stopping=True,
    )
    g = build_generation_config(s, model, tok)
    assert (g.max_new_tokens, g.min_new_tokens, g.num_beams, g.do_sample) == (11, 2, 3, True)
    assert (g.temperature, g.top_p, g.top_k) == (0.7, 0.9, 7)
    assert (g.repetition_penalty, g.length_penalty, g.no_repeat_ngram_size, g.early_stopping) == (1.3, 0.5, 2, True)
    assert tok.eos_token_id in (g.eos_token_id if isinstance(g.eos_token_id, list) else [g.eos_token_id])
    greedy = build_generation_config(Settings(temperature=0.2), model, tok)
    assert greedy.temperature != 0.2 and greedy.do_sample is False  # sampling knobs only with do_sample


def test_sampling_respects_settings(tmp_path):
    import torch

    model, tok = _causal(tmp_path)
    prompts = [tok("hello", add_special_tokens=False)["input_ids"]]
    s = Settings(max_new_tokens=8, min_new_tokens=8, do_sample=True, top_k=1)
    torch.manual_seed(0)
    a = generate_from_ids(model, tok, prompts, s, batch_size=1, return_ids=True)
    torch.manual_seed(1)
    b = generate_from_ids(model, tok, prompts, s, batch_size=1, return_ids=True)
    assert a == b and len(a[0]) == 8  # top_k=1 sampling is greedy; min_new_tokens forces the length


def test_clean_text():
    assert clean_text("  a\n\n b\t c \ufffd") == "a b c"
