"""Tokenizer loading and the pad-token policy.

Decoder tokenizers often ship without a pad token. Aliasing pad to EOS looks harmless but breaks
two things: a sequence-classification head that pools "the last non-pad token" then skips a real
trailing EOS, and a causal-LM loss that masks pads also masks the EOS the model should learn to
emit. So `pad_token: auto` adds a dedicated pad token (the model's embeddings are resized when it
is built, see models/loading.py) and EOS is used only when the config asks for it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from tunelab import ui
from tunelab.errors import ModelError
from tunelab.models.source import check_model_source, looks_local

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from tunelab.config.schema import Config

# The token we add. `<|pad|>` is what Qwen/Llama-style vocabularies use where they have one, and
# is very unlikely to collide with real text.
ADDED_PAD_TOKEN = "<|pad|>"


def load_tokenizer(cfg: Config, *, padding_side: str = "right") -> PreTrainedTokenizerBase:
    """Load the tokenizer of `cfg.model` and apply the pad policy and truncation side.

    `padding_side="right"` is right for training (and for our mask pooling); generation code asks
    for "left" explicitly.
    """
    from transformers import AutoTokenizer

    from tunelab.safety.remote_code import warn_remote_code

    ui.quiet_libraries()  # the first model-side code of every command: library noise off from here
    source = cfg.model.name_or_path
    warn_remote_code(source, cfg.model.trust_remote_code)
    # A path typo or an unreachable Hub id fails here at once, not after the loader's retries.
    check_model_source(source, cfg.model.revision)
    try:
        tok = AutoTokenizer.from_pretrained(
            source,
            revision=cfg.model.revision,
            trust_remote_code=cfg.model.trust_remote_code,  # only ever from config
        )
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"model.name_or_path={source!r}: cannot load its tokenizer ({first_line(exc)})",
            hint=source_hint(source),
        ) from None
    apply_pad_policy(tok, cfg.model.pad_token)
    tok.truncation_side = cfg.data.truncation_side
    tok.padding_side = padding_side
    return tok


def apply_pad_policy(tok: PreTrainedTokenizerBase, policy: str) -> str:
    """Give `tok` a pad token per `policy`; returns what was done ("kept", "added", "eos", "unk")."""
    if tok.pad_token is not None and policy in ("auto", "add"):
        return "kept"
    if policy == "eos":
        if tok.eos_token is None:
            raise ModelError(
                "model.pad_token is eos but the tokenizer has no eos token", hint="use model.pad_token: auto"
            )
        tok.pad_token = tok.eos_token
        return "eos"
    if policy == "unk":
        if tok.unk_token is None:
            raise ModelError(
                "model.pad_token is unk but the tokenizer has no unk token", hint="use model.pad_token: auto"
            )
        tok.pad_token = tok.unk_token
        return "unk"
    # auto / add: a dedicated token; never silently alias EOS.
    tok.add_special_tokens({"pad_token": ADDED_PAD_TOKEN})
    return "added"


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def source_hint(source: str) -> str:
    """Why a model/tokenizer source failed, as a hint: a missing dir vs an unreachable hub id."""
    from pathlib import Path

    if looks_local(source) and not Path(source).expanduser().is_dir():
        return f"{source} is not a directory; pass a local model directory or a hub id"
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("TRANSFORMERS_OFFLINE") == "1":
        return (
            "offline mode (HF_HUB_OFFLINE=1): download the model once, or point model.name_or_path at a local directory"
        )
    return "check the hub id and your network, or point model.name_or_path at a local directory"
