"""Loading a pretrained model under tunelab's policy.

One function every task calls, so the policy lives in one place:
- dtype and attention implementation come from the RuntimePlan (decided once per run);
- `trust_remote_code` only from the config; safetensors only unless `model.allow_pickle`
  (a pickle checkpoint can execute code on load);
- embeddings are resized when the tokenizer grew (an added pad token), and
  `model.config.pad_token_id` is always set, so heads that pool by pad id and collators agree;
- a missing directory or an unreachable hub id is a ModelError with a hint, not a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunelab.errors import ModelError
from tunelab.models.families import Family, family_of
from tunelab.models.source import looks_local
from tunelab.models.tokenizer import first_line, source_hint

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from tunelab.config.schema import Config
    from tunelab.runtime.plan import RuntimePlan


def load_model(
    cfg: Config, plan: RuntimePlan, tokenizer: PreTrainedTokenizerBase, auto_cls: Any, **kwargs: Any
) -> PreTrainedModel:
    """`auto_cls.from_pretrained(cfg.model.name_or_path, ...)` with the plan's dtype/attention.

    `kwargs` go to `from_pretrained` (num_labels, id2label, quantization_config, device_map, ...)
    and override the defaults set here.
    """
    import torch

    from tunelab.safety.remote_code import warn_remote_code

    source = cfg.model.name_or_path
    _check_local_source(source, cfg.model.revision)
    warn_remote_code(source, cfg.model.trust_remote_code)
    load_kwargs: dict[str, Any] = {
        "revision": cfg.model.revision,
        "trust_remote_code": cfg.model.trust_remote_code,
        "dtype": getattr(torch, plan.weight_dtype),
        "attn_implementation": plan.attn_implementation,
        # None lets transformers fall back to pytorch_model.bin; True refuses it.
        "use_safetensors": None if cfg.model.allow_pickle else True,
    }
    load_kwargs.update(kwargs)
    model = _from_pretrained(auto_cls, source, load_kwargs, cfg)
    align_with_tokenizer(model, tokenizer)
    return model


def model_family(cfg: Config) -> Family:
    """The Family of the configured model, from its config.json (cheap: no weights loaded)."""
    from transformers import AutoConfig

    source = cfg.model.name_or_path
    _check_local_source(source, cfg.model.revision)
    try:
        config = AutoConfig.from_pretrained(
            source, revision=cfg.model.revision, trust_remote_code=cfg.model.trust_remote_code
        )
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"model.name_or_path={source!r}: cannot read its config ({first_line(exc)})", hint=source_hint(source)
        ) from None
    return family_of(config)


def align_with_tokenizer(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
    """Resize embeddings when the tokenizer has more tokens than the model; set pad_token_id."""
    embeddings = model.get_input_embeddings()
    if embeddings is not None and len(tokenizer) > embeddings.num_embeddings:
        # mean_resizing: new rows start at the mean of the old ones, so an added pad token does
        # not carry a random vector far outside the trained distribution.
        model.resize_token_embeddings(len(tokenizer), mean_resizing=True)
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        raise ModelError("the tokenizer has no pad token", hint="set model.pad_token: auto (adds one) or eos")
    model.config.pad_token_id = pad_id
    gen = getattr(model, "generation_config", None)
    if gen is not None:
        gen.pad_token_id = pad_id


def _from_pretrained(auto_cls: Any, source: str, kwargs: dict[str, Any], cfg: Config) -> PreTrainedModel:
    try:
        return auto_cls.from_pretrained(source, **kwargs)
    except (OSError, ValueError, ImportError) as exc:
        fallback = _attention_fallback(kwargs.get("attn_implementation"), exc)
        if fallback is not None:
            # Once, and said out loud: the run goes on with an implementation every model has.
            from rich.markup import escape

            from tunelab import ui

            ui.warn(
                escape(
                    f"model {source!r} cannot load with attn_implementation={kwargs['attn_implementation']} "
                    f"({first_line(exc)}); falling back to {fallback}"
                )
            )
            return auto_cls.from_pretrained(source, **{**kwargs, "attn_implementation": fallback})
        if isinstance(exc, ImportError):
            raise
        if not cfg.model.allow_pickle and "safetensors" in str(exc).lower() and _has_pickle_weights(source):
            raise ModelError(
                f"model.name_or_path={source!r}: only pickle weights (pytorch_model.bin), no safetensors",
                hint="pickle can run code on load; convert to safetensors, or set model.allow_pickle: true if you trust it",
            ) from None
        raise ModelError(
            f"model.name_or_path={source!r}: cannot load the model ({first_line(exc)})", hint=source_hint(source)
        ) from None


def _attention_fallback(attn: str | None, exc: BaseException) -> str | None:
    """The implementation to retry with when `exc` is about the chosen attention, else None.

    flash-attn -> SDPA (the package is broken/missing or the class has no kernel); SDPA -> eager
    (an architecture without an SDPA kernel; eager is numerically the same).
    """
    text = str(exc).lower()
    if attn == "flash_attention_2" and ("flash" in text or isinstance(exc, ImportError)):
        return "sdpa"
    if attn == "sdpa" and ("sdpa" in text or "scaled_dot_product" in text):
        return "eager"
    return None


def _check_local_source(source: str, revision: str | None = None) -> None:
    from tunelab import ui
    from tunelab.models.source import check_model_source

    ui.quiet_libraries()  # before from_pretrained: its load report becomes one line of ours
    check_model_source(source, revision)  # a typo or an unreachable Hub id: at once, not after retries
    path = Path(source).expanduser()
    if looks_local(source) and not path.is_dir():
        raise ModelError(f"model.name_or_path={source!r}: directory not found", hint=source_hint(source))
    if path.is_dir() and not (path / "config.json").is_file():
        raise ModelError(
            f"model.name_or_path={source!r}: no config.json in this directory",
            hint="point at a directory written by save_pretrained",
        )


def _has_pickle_weights(source: str) -> bool:
    path = Path(source).expanduser()
    return path.is_dir() and any(path.glob("pytorch_model*.bin"))
