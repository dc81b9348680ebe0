"""Prompt -> token ids for the generative tasks, identical at training and prediction time.

Decoder-only models see `prompt + completion + EOS`; the labels are -100 on the prompt and the
completion ids (EOS included) elsewhere. We build the labels ourselves from the prompt length,
never from pad ids: with pad == eos a pad-based mask would hide the EOS the model must learn to
emit, and the model would never stop.

Prompts come from a Python format template over the row, or from the tokenizer's chat template
(user turn = rendered template, optional system turn) when it has one and the task allows it.
For a chat template the completion is what the template adds for the assistant turn (its own
end-of-turn marker included), cut right after the first EOS id.

Too-long prompts are shortened by cutting the *source field* (dialogue / instruction), not the
prompt's tail: cutting the tail would drop "Summary:" and the generation cue with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PromptSpec:
    template: str  # str.format over the row's columns plus the `field` alias
    source_column: str
    alias: str  # name the template uses for the source text ("input", "instruction")
    system_prompt: str | None
    use_chat_template: bool

    def uses_chat(self, tokenizer: Any) -> bool:
        return self.use_chat_template and bool(getattr(tokenizer, "chat_template", None))


def _fmt_row(spec: PromptSpec, row: dict[str, Any], source: str) -> str:
    values = {k: ("" if v is None else v) for k, v in row.items()}
    values[spec.source_column] = source
    values[spec.alias] = source
    try:
        return spec.template.format(**values)
    except KeyError as exc:
        from tunelab.errors import ConfigError

        raise ConfigError(
            f"task.prompt_template uses {{{exc.args[0]}}} but the data has no such column",
            hint=f"use {{{spec.alias}}} or one of: {', '.join(sorted(map(str, row)))}",
        ) from None


def _messages(spec: PromptSpec, user: str) -> list[dict[str, str]]:
    msgs = [{"role": "system", "content": spec.system_prompt}] if spec.system_prompt else []
    return msgs + [{"role": "user", "content": user}]


def prompt_text(spec: PromptSpec, tokenizer: Any, row: dict[str, Any], source: str) -> str:
    """The full prompt string (chat-rendered with the generation cue when a chat template is used)."""
    user = _fmt_row(spec, row, source)
    if spec.uses_chat(tokenizer):
        return tokenizer.apply_chat_template(_messages(spec, user), tokenize=False, add_generation_prompt=True)
    if spec.system_prompt:
        return f"{spec.system_prompt}\n\n{user}"
    return user


def _encode_prompt(spec: PromptSpec, tokenizer: Any, text: str) -> list[int]:
    # A rendered chat template already holds its special tokens (e.g. BOS) as text.
    return tokenizer(text, add_special_tokens=not spec.uses_chat(tokenizer))["input_ids"]


def prompt_ids(spec: PromptSpec, tokenizer: Any, row: dict[str, Any], budget: int, side: str) -> tuple[list[int], int]:
    """(prompt token ids of at most `budget` tokens, untruncated length); the source field is cut per `side`."""
    source = str(row.get(spec.source_column) or "")
    ids = _encode_prompt(spec, tokenizer, prompt_text(spec, tokenizer, row, source))
    full_len = len(ids)
    if len(ids) <= budget:
        return ids, full_len
    src_ids = tokenizer(source, add_special_tokens=False)["input_ids"]
    keep = budget - (len(ids) - len(src_ids))
    for _ in range(4):  # decode/encode round trips can drift by a token or two
        if keep <= 0:
            break
        kept = src_ids[:keep] if side == "right" else src_ids[-keep:]
        ids = _encode_prompt(
            spec, tokenizer, prompt_text(spec, tokenizer, row, tokenizer.decode(kept, skip_special_tokens=True))
        )
        if len(ids) <= budget:
            return ids, full_len
        keep -= len(ids) - budget
    # Template alone is over budget: keep its end (the generation cue) rather than its start.
    return (ids[-budget:] if budget > 0 else []), full_len


def completion_ids(
    spec: PromptSpec, tokenizer: Any, row: dict[str, Any], target: str, max_target_length: int
) -> tuple[list[int], int]:
    """(completion ids ending with exactly one EOS, at most `max_target_length` long; untruncated length)."""
    eos = tokenizer.eos_token_id
    if eos is None:
        from tunelab.errors import ModelError

        raise ModelError(
            "the tokenizer has no eos token; a generative model could not learn to stop",
            hint="use a tokenizer with an eos token",
        )
    text = _completion_text(spec, tokenizer, row, target)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    body = ids[: ids.index(eos)] if eos in ids else ids
    return body[: max(max_target_length - 1, 0)] + [eos], len(body) + 1


def _completion_text(spec: PromptSpec, tokenizer: Any, row: dict[str, Any], target: str) -> str:
    source = str(row.get(spec.source_column) or "")
    if spec.uses_chat(tokenizer):
        msgs = _messages(spec, _fmt_row(spec, row, source))
        prompt = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(msgs + [{"role": "assistant", "content": target}], tokenize=False)
        if full.startswith(prompt):
            return full[len(prompt) :]
        return target  # templates that rewrite earlier turns (e.g. reasoning blocks): plain target + EOS
    prompt = prompt_text(spec, tokenizer, row, source)
    # Keep a separator so the first answer word is tokenized as a word start (" word", not "word").
    return target if (not prompt or prompt[-1].isspace() or target[:1].isspace()) else " " + target


def causal_example(
    spec: PromptSpec,
    tokenizer: Any,
    row: dict[str, Any],
    target: str | None,
    *,
    max_length: int,
    max_target_length: int,
    side: str,
) -> dict[str, list[int]]:
    """input_ids / attention_mask / labels (labels only with a target) / untruncated_length for one
    decoder-only example. The completion gets at most half of max_length so the prompt keeps room."""
    completion, full_completion = (
        ([], 0)
        if target is None
        else completion_ids(spec, tokenizer, row, target, min(max_target_length, max_length // 2))
    )
    prompt, full_prompt = prompt_ids(spec, tokenizer, row, max_length - len(completion), side)
    ids = prompt + completion
    out = {"input_ids": ids, "attention_mask": [1] * len(ids), "untruncated_length": full_prompt + full_completion}
    if target is not None:
        out["labels"] = [-100] * len(prompt) + completion
    return out


def seq2seq_example(
    tokenizer: Any,
    source: str,
    target: str | None,
    *,
    max_length: int,
    max_target_length: int,
) -> dict[str, list[int]]:
    """Encoder input + decoder labels (ending with EOS) + untruncated_length for one encoder-decoder example."""
    enc = tokenizer(source)
    full = len(enc["input_ids"])
    if full > max_length:  # re-encode with truncation so the tokenizer keeps its special tokens at the ends
        enc = tokenizer(source, max_length=max_length, truncation=True)
    out = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "untruncated_length": full}
    if target is not None:
        eos = tokenizer.eos_token_id
        ids = tokenizer(text_target=target, add_special_tokens=True)["input_ids"]
        if eos is not None:
            body = ids[: len(ids) - 1] if ids and ids[-1] == eos else ids
            ids = body[: max(max_target_length - 1, 0)] + [eos]
        else:
            ids = ids[:max_target_length]
        out["labels"] = ids
    return out
