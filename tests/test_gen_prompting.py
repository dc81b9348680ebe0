"""Prompt/completion tokenization: loss on the completion only, EOS label kept (also when pad == eos)."""

from __future__ import annotations

import pytest

from gen_support import dialogue_frame, make_config
from tiny import make_tokenizer, tiny_model_dir
from tunelab.tasks.prompting import PromptSpec, causal_example, seq2seq_example

SPEC = PromptSpec("Summarize the dialogue.\n\n{input}\n\nSummary:", "dialogue", "input", None, False)
ROW = {
    "id": 1,
    "dialogue": "#Person1#: 내일 뭐 해? #Person2#: 친구랑 영화 보기로 했어",
    "summary": "두 사람이 약속을 정했다",
}


def _example(tok, spec=SPEC, max_length=96, side="right", target="두 사람이 약속을 정했다"):
    return causal_example(spec, tok, ROW, target, max_length=max_length, max_target_length=32, side=side)


def test_labels_mask_the_prompt_and_keep_the_completion_with_eos():
    tok = make_tokenizer()
    ex = _example(tok)
    prompt_len = sum(1 for x in ex["labels"] if x == -100)
    assert prompt_len > 0
    assert ex["labels"][:prompt_len] == [-100] * prompt_len
    completion = ex["labels"][prompt_len:]
    assert completion == ex["input_ids"][prompt_len:]  # labels are the completion tokens themselves
    assert completion[-1] == tok.eos_token_id and completion.count(tok.eos_token_id) == 1
    assert tok.decode(completion, skip_special_tokens=True).strip() == "두 사람이 약속을 정했다"
    # the prompt alone (prediction time) is exactly the training prompt
    alone = causal_example(SPEC, tok, ROW, None, max_length=96, max_target_length=32, side="right")
    assert alone["input_ids"] == ex["input_ids"][:prompt_len] and "labels" not in alone


def test_eos_label_present_when_pad_is_eos():
    tok = make_tokenizer(pad=False)
    tok.pad_token = tok.eos_token  # the dangerous aliasing
    assert tok.pad_token_id == tok.eos_token_id
    ex = _example(tok)
    assert ex["labels"][-1] == tok.eos_token_id


def test_chat_template_prompt_and_completion():
    tok = make_tokenizer(chat_template=True)
    spec = PromptSpec("{input}", "dialogue", "input", "You summarize.", True)
    ex = _example(tok, spec=spec)
    prompt_len = ex["labels"].count(-100)
    prompt_text = tok.decode(ex["input_ids"][:prompt_len])
    assert prompt_text.startswith("<|system|>\nYou summarize.") and prompt_text.endswith("<|assistant|>\n")
    completion = ex["labels"][prompt_len:]
    assert completion[-1] == tok.eos_token_id  # the template's end-of-turn </s>, nothing after it
    assert tok.decode(completion, skip_special_tokens=True).strip() == "두 사람이 약속을 정했다"


@pytest.mark.parametrize("side", ["right", "left"])
def test_long_input_is_cut_in_the_source_field_not_the_cue(side):
    tok = make_tokenizer()
    long_row = {**ROW, "dialogue": " ".join([ROW["dialogue"]] * 30)}
    ex = causal_example(SPEC, tok, long_row, "요약", max_length=64, max_target_length=16, side=side)
    assert len(ex["input_ids"]) <= 64
    assert ex["untruncated_length"] > 64
    prompt = tok.decode([i for i, lab in zip(ex["input_ids"], ex["labels"]) if lab == -100])
    assert prompt.startswith("Summarize the dialogue.") and prompt.rstrip().endswith("Summary:")


def test_completion_is_capped_and_still_ends_with_eos():
    tok = make_tokenizer()
    ex = causal_example(SPEC, tok, ROW, "요약 " * 50, max_length=96, max_target_length=8, side="right")
    completion = [x for x in ex["labels"] if x != -100]
    assert len(completion) == 8 and completion[-1] == tok.eos_token_id


def test_seq2seq_labels_end_with_eos():
    tok = make_tokenizer()
    ex = seq2seq_example(tok, ROW["dialogue"], ROW["summary"], max_length=8, max_target_length=4)
    assert len(ex["input_ids"]) == 8 and ex["untruncated_length"] > 8
    assert len(ex["labels"]) == 4 and ex["labels"][-1] == tok.eos_token_id


def test_trainer_batches_keep_completion_only_labels_with_pad_eq_eos(tmp_path):
    """The real SFTTrainer dataloader: prompt positions and padding are -100, the EOS label survives."""
    import torch
    from datasets import Dataset

    from tunelab.models.tokenizer import load_tokenizer
    from tunelab.runtime.plan import decide_plan
    from tunelab.tasks.base import task_from_config

    model_dir = tiny_model_dir(tmp_path, "llama", head="causal", pad=False)
    frame = dialogue_frame(8)
    frame.loc[1, "summary"] = "짧다"  # different lengths -> padding inside the batch
    cfg = make_config(tmp_path, model_dir, {"type": "summarization"}, tmp_path / "x.csv", model={"pad_token": "eos"})
    plan = decide_plan(cfg)
    tok = load_tokenizer(cfg)
    assert tok.pad_token_id == tok.eos_token_id
    task = task_from_config(cfg)
    ds = Dataset.from_pandas(frame).map(
        lambda b: task.tokenize(b, tok), batched=True, remove_columns=list(frame.columns)
    )
    model = task.build_model(cfg, plan, tok)
    trainer = task.build_trainer(
        cfg=cfg, plan=plan, model=model, tokenizer=tok, train_dataset=ds, output_dir=tmp_path / "ck"
    )
    assert any(c.__name__ == "SFTTrainer" for c in type(trainer).__mro__)
    batch = next(iter(trainer.get_train_dataloader()))
    labels, mask = batch["labels"], batch["attention_mask"]
    assert (labels[mask == 0] == -100).all()  # padding never trained
    for row_labels, row_ids, row_mask in zip(labels, batch["input_ids"], mask):
        real = row_labels[row_mask == 1]
        kept = real[real != -100]
        assert kept[-1].item() == tok.eos_token_id  # EOS label present although pad == eos
        first = int((real != -100).nonzero()[0])
        assert (real[:first] == -100).all() and first > 0  # the prompt is masked
        assert torch.equal(kept, row_ids[row_mask == 1][first:])
    # the loss the trainer computes is the completion-only loss
    out = model(**{k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "labels")})
    logits = out.logits[:, :-1].float()
    target = labels[:, 1:]
    manual = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.size(-1)), target.reshape(-1), ignore_index=-100
    )
    assert out.loss.item() == pytest.approx(manual.item(), rel=1e-5)
