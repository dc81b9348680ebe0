"""Generative tasks learn: on a tiny memorisable task the training loss falls clearly, and after
training the model scores better on its training rows than the same model untrained
(summarization: ROUGE, seq2seq and causal LoRA; sft with label_set: accuracy above majority)."""

from __future__ import annotations

import pytest

from gen_support import dialogue_frame, make_config, sft_frame
from learn_support import losses
from tiny import tiny_model_dir

pytestmark = pytest.mark.slow  # ~10-30 s each on a shared 2-core CPU

TRAIN = {"max_steps": 60, "learning_rate": 5e-3, "per_device_train_batch_size": 8, "logging_steps": 5}
# Adapters over a random tiny base move slowly: a higher rate, as LoRA usually takes.
LORA_TRAIN = {**TRAIN, "max_steps": 100, "learning_rate": 1e-2, "logging_steps": 10}


def _scaled_output_layer(model_dir):
    """Give a random tiny causal LM an output layer at a pretrained model's scale.

    At init std 0.02 behind a frozen final norm, the logits of a hidden-32 model stay within about
    +-0.6: adapters alone cannot move the loss far from ln(vocab), whatever they learn. A real
    pretrained output layer is far larger; scaling this one makes the LoRA test a test of LoRA.
    """
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(25.0)
    model.save_pretrained(model_dir, safe_serialization=True)
    return model_dir


def _untrained_score(cfg, frame):
    from tunelab.models.tokenizer import load_tokenizer
    from tunelab.runtime.plan import decide_plan
    from tunelab.tasks.base import build_seeded_model, task_from_config

    plan = decide_plan(cfg)
    tok = load_tokenizer(cfg)
    task = task_from_config(cfg, getattr(cfg.task, "label_set", None))
    model = build_seeded_model(task, cfg, plan, tok)  # the same init training starts from
    return task.score(task.predict(model.eval(), tok, frame, cfg, plan), frame)


def _train_and_score(tmp_path, cfg, frame):
    from tunelab.api import Run
    from tunelab.pipeline.train import train_from_config

    before = _untrained_score(cfg, frame)
    run_dir = train_from_config(cfg, skip_doctor=True)
    after = Run.open(run_dir).evaluate(tmp_path / "train.csv")
    history = losses(run_dir)
    first, last = sum(history[:2]) / 2, sum(history[-2:]) / 2
    assert last < 0.5 * first, history  # the loss falls clearly
    return before, after


@pytest.mark.parametrize(
    "model_type,head,model_section",
    [("bart", "seq2seq", {}), ("qwen3", "causal", {"lora": {"enabled": True, "r": 16, "alpha": 32, "dropout": 0.0}})],
)
def test_summarization_learns_rouge_on_train_rows_beats_untrained(tmp_path, model_type, head, model_section):
    frame = dialogue_frame(16)
    frame.to_csv(tmp_path / "train.csv", index=False)
    model_dir = tiny_model_dir(tmp_path, model_type, head=head)
    if model_section:
        _scaled_output_layer(model_dir)
    cfg = make_config(
        tmp_path,
        model_dir,
        {"type": "summarization"},
        tmp_path / "train.csv",
        model=model_section,
        training=LORA_TRAIN if model_section else TRAIN,
        inference={"batch_size": 8, "generation": {"max_new_tokens": 24}},
    )
    before, after = _train_and_score(tmp_path, cfg, frame)
    assert after["rouge_sum"] > before["rouge_sum"] + 0.2, (before["rouge_sum"], after["rouge_sum"])


def test_sft_with_label_set_beats_the_majority_class(tmp_path):
    frame = sft_frame(24)
    frame.to_csv(tmp_path / "train.csv", index=False)
    model_dir = _scaled_output_layer(tiny_model_dir(tmp_path, "llama", head="causal"))
    cfg = make_config(
        tmp_path,
        model_dir,
        {"type": "sft", "label_set": ["spam", "ham"], "prompt_template": "spam or ham?\n{instruction}\nAnswer:"},
        tmp_path / "train.csv",
        model={"lora": {"enabled": True, "r": 16, "alpha": 32, "dropout": 0.0, "target_modules": "all-linear"}},
        training=LORA_TRAIN,
    )
    majority = frame["response"].value_counts(normalize=True).max()  # 0.5: spam and ham alternate
    _, after = _train_and_score(tmp_path, cfg, frame)
    assert after["accuracy"] >= 0.9 > majority, after
