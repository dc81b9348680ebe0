"""sft task: instruction classification always yields a label from the set; scoring; likelihoods."""

from __future__ import annotations

import pytest
import torch

from gen_support import make_config, sft_frame
from tiny import tiny_model_dir
from tunelab.tasks.sft import normalize_label


def _sft(tmp_path, model_type="llama", head="causal", label_set=("spam", "ham"), **tok_kwargs):
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    from tunelab.models.tokenizer import load_tokenizer
    from tunelab.runtime.plan import decide_plan
    from tunelab.tasks.base import task_from_config

    model_dir = tiny_model_dir(tmp_path, model_type, head=head, **tok_kwargs)
    task_cfg = {"type": "sft", "prompt_template": "Answer spam or ham.\n{instruction}\nAnswer:"}
    if label_set:
        task_cfg["label_set"] = list(label_set)
    cfg = make_config(
        tmp_path, model_dir, task_cfg, tmp_path / "x.csv", inference={"generation": {"max_new_tokens": 3}}
    )
    auto = AutoModelForSeq2SeqLM if head == "seq2seq" else AutoModelForCausalLM
    return cfg, decide_plan(cfg), load_tokenizer(cfg), task_from_config(cfg), auto.from_pretrained(model_dir)


def test_normalize_label():
    assert normalize_label("  SPAM!! ") == "spam"
    assert normalize_label("'Ham.'") == "ham"
    assert normalize_label("ｓｐａｍ") == "spam"  # NFKC full-width
    assert normalize_label("not spam") == "not spam"


@pytest.mark.parametrize(
    "model_type,head,chat", [("llama", "causal", False), ("qwen3", "causal", True), ("bart", "seq2seq", False)]
)
def test_predictions_are_always_in_the_label_set(tmp_path, model_type, head, chat):
    cfg, plan, tok, task, model = _sft(tmp_path, model_type, head, chat_template=chat)
    frame = sft_frame(6)
    pred = task.predict(model, tok, frame, cfg, plan)
    labels = pred.columns["prediction"]
    assert len(labels) == 6 and set(labels) <= {"spam", "ham"}
    # an untrained model generates noise: every row went through the likelihood fallback
    assert pred.extra["label_source"].count("likelihood") >= 1
    assert pred.ids == frame["id"].tolist()
    scores = task.score(pred, frame)
    gold = frame["response"].map(normalize_label).tolist()
    expected = sum(p == g for p, g in zip(labels, gold)) / len(gold)
    assert scores["accuracy"] == pytest.approx(expected) and scores["primary_metric"] == "macro_f1"


def test_exact_match_first_then_likelihood(tmp_path):
    cfg, plan, tok, task, model = _sft(tmp_path)
    frame = sft_frame(3)
    labels, sources = task.map_to_labels(model, tok, frame, ["  SPAM! ", "Ham", "something else entirely"])
    assert labels[:2] == ["spam", "ham"] and sources == ["match", "match", "likelihood"]
    assert labels[2] in {"spam", "ham"}


def test_likelihood_fallback_picks_the_argmax_of_the_model(tmp_path):
    """sequence_logprobs equals a by-hand sum of log-softmax over the completion tokens."""
    from tunelab.inference.generation import sequence_logprobs

    cfg, plan, tok, task, model = _sft(tmp_path)
    row = task.rows(sft_frame(1))[0]
    prompt = task.example(tok, row, None)["input_ids"]
    comps = [task._label_completion(tok, row, lbl) for lbl in ("spam", "ham")]
    got = sequence_logprobs(model, tok, prompt, comps)
    for comp, value in zip(comps, got):
        ids = torch.tensor([prompt + comp])
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
        manual = sum(logp[len(prompt) - 1 + j, t].item() for j, t in enumerate(comp))
        assert value == pytest.approx(manual, abs=1e-4)
    assert comps[0][-1] == tok.eos_token_id  # the label must end: "spam" + EOS, not a prefix of "spammy"
    expected = ["spam", "ham"][int(got[1] > got[0])]
    assert task.most_likely_label(model, tok, row) == expected


def test_free_form_sft_scored_with_rouge(tmp_path):
    cfg, plan, tok, task, model = _sft(tmp_path, label_set=None)
    frame = sft_frame(4)
    pred = task.predict(model, tok, frame, cfg, plan)
    scores = task.score(pred, frame)
    assert scores["primary_metric"] == "rouge_sum" and "rouge1" in scores


def test_unknown_gold_label_is_a_data_error(tmp_path):
    from tunelab.errors import DataError
    from tunelab.tasks.base import Prediction

    cfg, plan, tok, task, model = _sft(tmp_path)
    frame = sft_frame(2)
    frame.loc[0, "response"] = "maybe"
    with pytest.raises(DataError, match="maybe"):
        task.score(Prediction(ids=[0, 1], columns={"prediction": ["spam", "ham"]}), frame)
