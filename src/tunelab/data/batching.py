"""Batching strategies: how tokenized samples become batches (collator + train sampler).

| strategy     | sampler                  | collator                                   |
|--------------|--------------------------|--------------------------------------------|
| `max_length` | random                   | pad every row to data.max_length (baseline)|
| `dynamic`    | random                   | pad to the longest row of the batch        |
| `grouped`    | transformers' length-grouped sampler (`length` column) + dynamic padding |
| `bucketed`   | `BucketedSampler`: length-sorted batches inside small random windows, batch order shuffled over the whole epoch + dynamic padding |
| `packed`     | random                   | padding-free: one row, position_ids restart per sample |
| `auto`       | packed where a varlen attention kernel exists (flash-attn), else `AUTO_FALLBACK` = `dynamic` (see there) |

Why `bucketed` exists: transformers' length-grouped sampler sorts mega-batches of 50 batches and
yields each one's batches from longest to shortest, so consecutive steps see documents of one
length. Where length tells the class (news sources, plot vs review) that is a run of steps on one
or two classes, and a 1-epoch run can end on such a run and over-predict the last class seen.
`bucketed` keeps nearly the same padding savings (each batch is still cut from a length-sorted
window) but shuffles the order of all batches of the epoch, so neighbouring steps are
independent draws again. Each batch still holds about one length, so fewer classes on such
data: the quality benchmark (docs/benchmarks.md) measured it 3 points of accuracy below random
order on tweets whose length tells the account (`grouped` 5 below), so `auto` does not pick it.

Packing on SDPA/eager has no varlen kernel: transformers turns the restarting position_ids into a
dense block-diagonal mask (masking_utils), so attention costs (sum of lengths)^2 per row and
packing loses to length grouping on CPU (docs/benchmarks.md: `packed` reaches about half of
`grouped`'s samples/s). Hence `auto` packs only with a varlen kernel. Packing draws rows in random
order, so a packed batch mixes classes as a random one does: it is fast without the length bias.

Loss weighting under packing is identical to the padded path:
- classification: one label per segment; models/pooling.py pools each segment and averages
  per-sample losses (sum / number of samples), exactly as for a padded batch;
- causal LM: labels are concatenated with -100 at each segment's first token (no prediction
  across a boundary); the loss is a mean over label tokens of the whole batch, which is what
  transformers computes for a padded batch too (a token-mean over the batch, not a mean of
  per-sample means), with the same tokens counted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from tunelab.errors import ConfigError

if TYPE_CHECKING:
    from tunelab.config.schema import Config
    from tunelab.runtime.plan import RuntimePlan


STRATEGIES = ("max_length", "dynamic", "grouped", "bucketed", "packed")
# Batches per length-sorted window of `bucketed`. Sorting 8 batches' worth of random rows already
# gives nearly all of grouped's padding savings at the batch sizes used for fine-tuning.
BUCKET_WINDOW = 8
TASK_KINDS = ("classification", "causal_lm", "seq2seq")
# Keys a collator passes to the model; everything else in a row (length, id, text) is dropped here,
# so the Trainer can keep the `length` column for its sampler (remove_unused_columns=False).
MODEL_KEYS = ("input_ids", "attention_mask", "token_type_ids", "labels", "decoder_input_ids")


def supports_packing(model: Any) -> bool:
    """Whether `model` computes packed rows correctly (no attention across samples, right pooling).

    Decoder classifiers need our segment pooling (models/pooling.py); decoder-only causal LMs
    handle restarting position_ids through transformers' mask code. Encoders (bidirectional
    masks ignore position_ids) and encoder-decoders cannot be packed this way.
    """
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = getattr(inner, "config", None)
    if config is None or getattr(config, "is_encoder_decoder", False) or getattr(config, "is_decoder", False):
        return False  # `is_decoder` is set on encoders (BERT) used as decoders, not on llama & co
    if getattr(type(inner), "_tunelab_mask_pooling", False):
        return True
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.get(config.model_type) == type(inner).__name__


def resolve_strategy(cfg: Config, plan: RuntimePlan, model: Any = None) -> tuple[str, str]:
    """(strategy, reason) for `cfg.data.batching`; `auto` decided by the attention backend.

    `model` (optional) says whether packing is possible at all; without it, `auto` never packs.
    """
    requested = cfg.data.batching
    packable = model is not None and supports_packing(model)
    if requested == "packed" and model is not None and not packable:
        model_type = getattr(getattr(model, "config", None), "model_type", "?")
        raise ConfigError(
            f"data.batching: packed is not supported for this model (model_type {model_type}): "
            "only decoder-only causal LMs and decoder sequence classifiers can be packed",
            hint="use data.batching: grouped (length-grouped, nearly padding-free) or auto",
        )
    if requested != "auto":
        return requested, f"data.batching: {requested} (requested)"
    if plan.varlen_attention and packable:
        return (
            "packed",
            f"auto -> packed: {plan.attn_implementation} has a varlen kernel, so packing costs no padding and no block mask",
        )
    why = (
        (
            f"{plan.attn_implementation} on {plan.device} has no varlen kernel (a dense block-diagonal mask makes packing "
            "slower than length grouping)"
        )
        if packable
        else "this model cannot be packed"
    )
    return AUTO_FALLBACK, f"auto -> {AUTO_FALLBACK}: {why}; {AUTO_WHY}"


# What `auto` picks without a varlen kernel, chosen by the quality benchmark
# (benchmarks/bench_quality.py, docs/benchmarks.md section 7): on real data where length tells the
# class (tweets of 16 health-news accounts), every length-sorted order scored below random order
# by more than random order's spread over 3 seeds (accuracy: `bucketed` -3.1 points, `grouped`
# -5.2), and the smaller sort windows that keep more classes per batch give up most of the padding
# saving (batch-composition table there). Random order with dynamic padding is the one that never
# costs accuracy; `bucketed` and `grouped` stay for data where length says nothing about the label.
AUTO_FALLBACK = "dynamic"
AUTO_WHY = (
    "random order with dynamic padding: length-sorted batches cost accuracy where length tells the class "
    "(docs/benchmarks.md, quality benchmark)"
)


def train_sampling(strategy: str) -> str:
    """transformers' `train_sampling_strategy` for a batching strategy.

    `bucketed` is "random" here: its sampler is ours, installed by `make_train_sampler`
    through the trainer's `_get_train_sampler` (transformers has no option for it).
    """
    return "group_by_length" if strategy == "grouped" else "random"


def make_train_sampler(strategy: str, dataset: Any, batch_size: int, seed: int | None = None) -> Any:
    """Our train sampler for `strategy`, or None where transformers' own one is right."""
    if strategy != "bucketed" or dataset is None or "length" not in getattr(dataset, "column_names", ()):
        return None
    return BucketedSampler(dataset["length"], batch_size, seed=seed)


class BucketedSampler:
    """Length-sorted batches cut from random windows, in an order shuffled over the whole epoch.

    Each epoch: a random permutation of the rows is cut into windows of `window` batches; each
    window is sorted by length and cut into batches (so padding stays small); then the batches
    of all windows are shuffled together, so the lengths (and, where length tells the class, the
    classes) of consecutive steps are independent. The batch with the longest row goes first, as
    in transformers' sampler, so an out-of-memory shows at step 1 rather than mid-epoch.
    With `seed`, each epoch's order depends only on (seed, epoch), so a resumed run sees the
    batches the uninterrupted one would (accelerate calls `set_epoch`, as for its own samplers;
    training/checkpointing.py does the same for transformers' grouped sampler); otherwise
    `generator`, or torch's global generator. Yields row indices; the DataLoader cuts them into
    batches of `batch_size` in order.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        window: int = BUCKET_WINDOW,
        generator: Any = None,
        seed: int | None = None,
    ):
        self.lengths = [int(n) for n in lengths]
        self.batch_size = batch_size
        self.window = window
        self.generator = generator
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def batches(self) -> list[list[int]]:
        """One epoch's batches (a fresh random draw per call unless seeded)."""
        import torch

        if self.seed is not None:
            self.generator = torch.Generator().manual_seed(self.seed + self.epoch)
        n, size = len(self.lengths), self.batch_size
        order = torch.randperm(n, generator=self.generator).tolist()
        span = size * self.window
        batches: list[list[int]] = []
        for start in range(0, n, span):
            window = sorted(order[start : start + span], key=self.lengths.__getitem__, reverse=True)
            batches += [window[i : i + size] for i in range(0, len(window), size)]
        # A short batch only at the very end keeps every other batch full (DataLoader cuts by count).
        full = [b for b in batches if len(b) == size]
        short = [b for b in batches if len(b) < size]
        shuffled = [full[i] for i in torch.randperm(len(full), generator=self.generator).tolist()]
        if shuffled:
            longest = max(range(len(shuffled)), key=lambda i: self.lengths[shuffled[i][0]])
            shuffled[0], shuffled[longest] = shuffled[longest], shuffled[0]
        return shuffled + short

    def __iter__(self):
        for batch in self.batches():
            yield from batch


def trainer_overrides(strategy: str) -> dict[str, Any]:
    """TrainingArguments our collators need: our sampler choice, and the `length` column kept."""
    return {
        "train_sampling_strategy": train_sampling(strategy),
        "length_column_name": "length",
        # Our collators drop non-model keys themselves; keeping columns lets the sampler read
        # `length` from Arrow instead of measuring every row's input_ids in Python.
        "remove_unused_columns": False,
    }


def make_collator(
    strategy: str,
    tokenizer: Any,
    task_kind: str,
    max_length: int,
    *,
    varlen_attention: bool = False,
    pad_to_multiple_of: int | None = None,
) -> Callable[[Sequence[dict[str, Any]]], dict[str, Any]]:
    """The collator for a resolved strategy (`auto` must be resolved first) and task kind."""
    if strategy not in STRATEGIES:
        raise ConfigError(
            f"data.batching: unknown strategy {strategy!r}", hint=f"one of {', '.join(STRATEGIES)} or auto"
        )
    if task_kind not in TASK_KINDS:
        raise ValueError(f"task_kind must be one of {TASK_KINDS}, got {task_kind!r}")
    if strategy == "packed":
        if task_kind == "classification":
            return PackedClassificationCollator(varlen_attention=varlen_attention)
        if task_kind == "causal_lm":
            from transformers import DataCollatorWithFlattening

            # The stock padding-free collator is exactly right for causal LM: labels get -100 at
            # each sample's first token, position_ids restart, cu_seq_lens for flash-attn.
            return _KeepModelKeys(
                DataCollatorWithFlattening(
                    return_position_ids=True, separator_id=-100, return_flash_attn_kwargs=varlen_attention
                )
            )
        raise ConfigError(
            "data.batching: packed is not supported for encoder-decoder models", hint="use data.batching: grouped"
        )
    padding = "max_length" if strategy == "max_length" else "longest"
    if task_kind == "classification":
        from transformers import DataCollatorWithPadding

        inner = DataCollatorWithPadding(
            tokenizer, padding=padding, max_length=max_length, pad_to_multiple_of=pad_to_multiple_of
        )
    else:
        from transformers import DataCollatorForSeq2Seq

        # Pads `labels` with -100 alongside input_ids (causal LM and seq2seq alike).
        inner = DataCollatorForSeq2Seq(
            tokenizer,
            padding=padding,
            max_length=max_length,
            pad_to_multiple_of=pad_to_multiple_of,
            label_pad_token_id=-100,
        )
    return _KeepModelKeys(inner)


class _KeepModelKeys:
    """Drop row fields the model does not take (length, id, raw text) before a stock collator."""

    def __init__(self, inner: Callable[..., Any]):
        self.inner = inner

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, Any]:
        rows = [{k: v for k, v in f.items() if k in MODEL_KEYS or k == "label"} for f in features]
        return self.inner(rows)

    def __repr__(self) -> str:
        return f"{type(self.inner).__name__}"


class PackedClassificationCollator:
    """Padding-free classification batches: all samples in one row, one label per sample.

    Returns input_ids (1, T), position_ids (1, T) restarting at 0 per sample, no attention_mask
    (transformers then builds the block-diagonal mask from position_ids), labels (N,), and with
    a varlen kernel cu_seq_lens_q/k + max_length_q/k. Pair with models/pooling.py, which pools
    the last token of each segment. The stock DataCollatorWithFlattening cannot do this: it
    concatenates labels as token sequences.
    """

    def __init__(self, varlen_attention: bool = False):
        self.varlen_attention = varlen_attention

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, Any]:
        import torch

        ids: list[int] = []
        pos: list[int] = []
        bounds = [0]
        for f in features:
            seq = f["input_ids"]
            seq = seq.tolist() if hasattr(seq, "tolist") else list(seq)
            if not seq:
                raise ValueError("packed batch: a sample has no tokens")
            ids += seq
            pos += range(len(seq))
            bounds.append(bounds[-1] + len(seq))
        batch: dict[str, Any] = {"input_ids": torch.tensor([ids]), "position_ids": torch.tensor([pos])}
        label_key = "labels" if "labels" in features[0] else ("label" if "label" in features[0] else None)
        if label_key is not None:
            batch["labels"] = torch.tensor([f[label_key] for f in features])
        if self.varlen_attention:
            cu = torch.tensor(bounds, dtype=torch.int32)
            longest = max(b - a for a, b in zip(bounds, bounds[1:]))
            batch.update(cu_seq_lens_q=cu, cu_seq_lens_k=cu, max_length_q=longest, max_length_k=longest)
        return batch


def padding_stats(batch: dict[str, Any]) -> tuple[int, int]:
    """(real tokens, computed tokens) of a collated batch: its padding efficiency is real/computed."""
    ids = batch["input_ids"]
    computed = int(ids.numel())
    mask = batch.get("attention_mask")
    real = int(mask.sum()) if mask is not None else computed  # packed rows carry no padding
    return real, computed
