"""Last-real-token pooling for decoder sequence classifiers, padded or packed.

Stock decoder classifiers (`GenericForSequenceClassification`: llama, qwen2/3, mistral, gemma,
phi3, ... and GPT-2) pool "the rightmost token that is not pad_token_id". That is wrong when
pad == eos and a sample ends with EOS (the token before the EOS is pooled), impossible without a
pad token, and meaningless for packed rows (one logit row per packed *row*, not per sample).
No stock model pools packed segments, so this is ours:

- padded batches: pool the last position whose attention_mask is 1 (right or left padding), with
  position_ids derived from the mask so a left-padded sample sees the same positions as a
  right-padded one;
- packed batches (no attention_mask, position_ids restarting at 0 per sample, or flash-attn's
  `cu_seq_lens_q`): pool the last token of every segment, returning one logit row per segment.
  transformers builds the block-diagonal mask from position_ids itself (masking_utils
  `find_packed_sequence_indices`) but only when no KV cache is in play, so `use_cache` is
  always forced off here (a classifier never needs a cache).

The loss is computed here per sample (cross-entropy with optional label smoothing), divided by
the Trainer's `num_items_in_batch` when given, so packing and gradient accumulation never
reweight samples. The class keeps its original name (transformers picks the loss and
`architectures` from the class name), through a dynamically created subclass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

_SUBCLASSES: dict[type, type] = {}
# Keyword arguments a flash-attn packed batch carries (DataCollatorWithFlattening naming).
_CU_SEQLENS_KEYS = ("cu_seq_lens_q", "cu_seqlens")


def is_decoder_sequence_classifier(model: nn.Module) -> bool:
    """A decoder-only classifier with a `score` head over a base model (by capability, not name)."""
    from torch import nn

    config = getattr(model, "config", None)
    if config is None or getattr(config, "is_encoder_decoder", False):
        return False
    prefix = getattr(model, "base_model_prefix", "")
    base = getattr(model, prefix, None) if prefix else None
    return isinstance(getattr(model, "score", None), nn.Module) and isinstance(base, nn.Module)


def enable_mask_pooling(model: nn.Module, label_smoothing: float = 0.0) -> nn.Module:
    """Make a decoder classifier pool the last real token (padded) or each segment's last (packed).

    Accepts the transformers model or a peft wrapper around it (the inner model is patched, so the
    order relative to LoRA does not matter). Idempotent. Returns `model`.
    """
    from tunelab.errors import ModelError

    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    if not is_decoder_sequence_classifier(inner):
        model_type = getattr(getattr(inner, "config", None), "model_type", "?")
        raise ModelError(
            f"{type(inner).__name__} (model_type {model_type}) is not a decoder sequence classifier with a score head",
            hint="last-token pooling applies to decoder models loaded with AutoModelForSequenceClassification",
        )
    cls = type(inner)
    if not getattr(cls, "_tunelab_mask_pooling", False):
        inner.__class__ = _pooled_subclass(cls)
    inner._tunelab_label_smoothing = float(label_smoothing)
    return model


def _pooled_subclass(cls: type) -> type:
    if cls not in _SUBCLASSES:
        # Same __name__ as the stock class: the Trainer's loss choice and the saved
        # `architectures` entry read the class name, and the saved model must reload as stock.
        _SUBCLASSES[cls] = type(
            cls.__name__, (_MaskPoolingMixin, cls), {"__module__": cls.__module__, "__doc__": cls.__doc__}
        )
    return _SUBCLASSES[cls]


def last_token_indices(
    attention_mask: torch.Tensor | None = None,
    position_ids: torch.Tensor | None = None,
    cu_seqlens: torch.Tensor | None = None,
    shape: tuple[int, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, column) of the token to pool for every sample, in sample order.

    - `attention_mask` (B, T): the last position with mask 1 in each row (left/right padding).
    - else `cu_seqlens` (N+1,) over a flattened row: each segment's end.
    - else `position_ids` (B, T) restarting per packed sample: each segment's last token,
      row-major (the order the packing collator concatenated the samples in).
    - else: the last column of each row of `shape`.
    """
    import torch

    if attention_mask is not None:
        mask = attention_mask.to(torch.long)
        cols = torch.arange(mask.shape[-1], device=mask.device) * mask
        rows = torch.arange(mask.shape[0], device=mask.device)
        return rows, cols.argmax(-1)
    if cu_seqlens is not None:
        ends = cu_seqlens[1:].to(torch.long) - 1
        return torch.zeros_like(ends), ends
    if position_ids is not None:
        pos = position_ids if position_ids.dim() == 2 else position_ids.unsqueeze(0)
        is_end = torch.ones_like(pos, dtype=torch.bool)
        is_end[:, :-1] = pos[:, 1:] != pos[:, :-1] + 1
        rows, cols = is_end.nonzero(as_tuple=True)
        return rows, cols
    if shape is None:
        raise ValueError("last_token_indices needs attention_mask, position_ids, cu_seqlens or shape")
    rows = torch.arange(shape[0])
    return rows, torch.full((shape[0],), shape[1] - 1, dtype=torch.long)


def per_sample_loss(
    logits: torch.Tensor, labels: torch.Tensor, config: Any, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Unreduced loss, one value per sample, following the config's problem_type like transformers."""
    import torch
    import torch.nn.functional as F

    num_labels = logits.shape[-1]
    problem = getattr(config, "problem_type", None)
    if problem is None:
        problem = (
            "regression"
            if num_labels == 1
            else (
                "single_label_classification"
                if labels.dtype in (torch.long, torch.int)
                else "multi_label_classification"
            )
        )
    logits = logits.float()  # the loss in fp32 even under bf16/fp16 autocast
    if problem == "regression":
        return F.mse_loss(logits.squeeze(-1), labels.float().view(-1), reduction="none")
    if problem == "multi_label_classification":
        return F.binary_cross_entropy_with_logits(logits, labels.float(), reduction="none").mean(-1)
    return F.cross_entropy(
        logits.view(-1, num_labels),
        labels.view(-1),
        reduction="none",
        label_smoothing=label_smoothing,
        ignore_index=-100,
    )


class _MaskPoolingMixin:
    """Forward of a decoder classifier with mask/segment pooling; mixed in before the stock class."""

    _tunelab_mask_pooling = True
    # Our loss honours `num_items_in_batch` (sum / count), so the Trainer must not divide by
    # gradient_accumulation_steps again (transformers' contract for models taking loss kwargs).
    accepts_loss_kwargs = True

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values: Any = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        use_cache: bool | None = None,
        num_items_in_batch: torch.Tensor | int | None = None,
        **kwargs: Any,
    ) -> Any:
        from transformers.modeling_outputs import SequenceClassifierOutputWithPast

        ref = input_ids if input_ids is not None else inputs_embeds
        cu_seqlens = next((kwargs[k] for k in _CU_SEQLENS_KEYS if kwargs.get(k) is not None), None)
        if attention_mask is not None and attention_mask.dim() == 2 and position_ids is None:
            # Positions count real tokens only: left padding then sees what right padding sees.
            position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        kwargs.pop("cu_seqlens", None)  # our alias; the attention kernels read cu_seq_lens_q/_k
        base = getattr(self, self.base_model_prefix)
        # No KV cache ever: with one, transformers ignores packed position_ids (tokens would attend
        # across sample boundaries) and a classifier has no use for it.
        outputs = base(
            input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            use_cache=False,
            **kwargs,
        )
        hidden = outputs[0]
        mask2d = attention_mask if attention_mask is not None and attention_mask.dim() == 2 else None
        rows, cols = last_token_indices(
            mask2d, position_ids if mask2d is None else None, cu_seqlens, tuple(ref.shape[:2])
        )
        # The head only on pooled positions: same numbers as scoring every token, less work.
        logits = self.score(hidden[rows.to(hidden.device), cols.to(hidden.device)])
        loss = None
        if labels is not None:
            labels = labels.to(logits.device)
            if labels.shape[0] != logits.shape[0]:
                raise ValueError(f"{labels.shape[0]} labels for {logits.shape[0]} pooled samples (packed segments?)")
            losses = per_sample_loss(logits, labels, self.config, getattr(self, "_tunelab_label_smoothing", 0.0))
            # Sum over samples / number of samples: in the whole accumulated (and gathered) batch
            # when the Trainer says how many, else in this batch (ignored labels -100 excluded).
            if num_items_in_batch is None:
                counted = (
                    labels.view(labels.shape[0], -1)[:, 0] != -100
                    if not labels.is_floating_point()
                    else labels.new_ones(labels.shape[0], dtype=bool)
                )
                num_items_in_batch = counted.sum().clamp(min=1)
            loss = losses.sum() / num_items_in_batch
        return SequenceClassifierOutputWithPast(
            loss=loss,
            logits=logits,
            hidden_states=getattr(outputs, "hidden_states", None),
            attentions=getattr(outputs, "attentions", None),
        )
