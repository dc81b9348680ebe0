"""Checks 4 and 5: the initial loss (a few eval batches, no grad) and the gradient norm at
initialisation (one backward), with the evidence needed to name a cause.

A fresh C-way classifier should start at cross-entropy ~ln(C) (a tiny random Qwen3 with 280
classes starts at 5.637 vs ln 280 = 5.635). The seed run started at 69.5: logits with a std in
the tens, from a head whose weights were far too large for the pooled hidden state's norm. We
record logit mean/std, head weight std, the pooled hidden-state norm and whether the pooled
position is a real token, then name the first cause the evidence supports.
"""

from __future__ import annotations

import math
from typing import Any

from tunelab.diagnostics.batches import autocast, model_device, sample_batches, to_device, train_mode
from tunelab.diagnostics.context import CheckContext
from tunelab.diagnostics.findings import Finding, error, info, warning

LOSS_ERROR_RATIO = 1.5  # initial loss above 1.5 x ln(C): something is mis-scaled
LOSS_WARN_RATIO = 1.2
HEAD_STD_FACTOR = 5.0  # head weight std this many times the config's initializer_range
TARGET_LOGIT_STD = 0.5  # the head std we suggest makes pooled logits about this wide
GRAD_WARN = 50.0  # the seed's 196-214 at init; healthy fine-tunes start in the single digits
GRAD_CLIP_FACTOR = 10.0  # grad norm over 10x max_grad_norm: clipping rescales every update by >10x


def head_module(model: Any, out_features: int | None) -> tuple[str, Any] | tuple[None, None]:
    """The classification/LM head: the last Linear producing `out_features` (or the output embeddings)."""
    from torch import nn

    if out_features is None:
        get = getattr(model, "get_output_embeddings", None)
        head = get() if callable(get) else None
        name = next((n for n, m in model.named_modules() if m is head), None)
        return (name, head) if head is not None else (None, None)
    found: tuple[str, Any] | tuple[None, None] = (None, None)
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and module.out_features == out_features:
            found = (name, module)
    return found


def _probe(ctx: CheckContext) -> dict[str, Any]:
    """Run doctor.batches eval batches; collect loss, logits and what the head saw."""
    import torch

    model = ctx.model
    if "probe" in ctx.cache:
        return ctx.cache["probe"]
    # Classification only: an LM head's input/output are (batch, length, vocab)-sized.
    _, head = head_module(model, ctx.num_labels) if ctx.kind == "classification" else (None, None)
    seen: list[tuple[Any, Any]] = []
    hook = (
        head.register_forward_hook(lambda m, i, o: seen.append((i[0].detach().float(), o.detach().float())))
        if head is not None
        else None
    )
    device = model_device(model)
    losses, moments, labels, pooled = [], [], [], []
    width = None
    try:
        with train_mode(model, False), torch.no_grad():
            for batch in sample_batches(ctx, ctx.cfg.doctor.batches):
                batch = to_device(batch, device)
                seen.clear()
                with autocast(ctx, device):
                    out = model(**batch)
                if out.loss is None:
                    continue
                losses.append(float(out.loss))
                # Only moments of the logits are kept: an LM's (batch, length, vocab) logits are GBs.
                lg = out.logits.detach()
                width = int(lg.shape[-1])
                moments.append((float(lg.float().sum()), float(lg.float().pow(2).sum()), lg.numel()))
                labels.append(batch.get("labels"))
                if seen and ctx.kind == "classification":
                    pooled.append(_pooled_positions(seen[-1], lg.float(), batch.get("attention_mask")))
                del out, lg
    finally:
        if hook is not None:
            hook.remove()
    total, sq, n = (sum(m[i] for m in moments) for i in range(3))
    mean = total / n if n else 0.0
    std = math.sqrt(max(0.0, sq / n - mean * mean) * n / max(1, n - 1)) if n else 0.0
    result = {
        "losses": losses,
        "logit_mean": mean,
        "logit_std": std,
        "width": width,
        "labels": labels,
        "pooled": pooled,
        "head": head,
    }
    ctx.cache["probe"] = result
    return result


def _pooled_positions(seen: tuple[Any, Any], logits: Any, mask: Any) -> dict[str, Any]:
    """Which token each row's logits came from, whether it is a real token, and its hidden norm."""
    import torch

    head_in, head_out = seen
    if head_in.dim() == 2:  # the model pooled before the head (CLS pooler, mask pooling): norm only
        return {"norms": head_in.norm(dim=-1), "on_pad": None}
    # The head scored every position and the model picked one: find it by matching the logits.
    diff = (head_out - logits.unsqueeze(1)).abs().amax(-1)  # (B, T)
    idx = diff.argmin(-1)
    rows = torch.arange(head_in.shape[0])
    norms = head_in[rows, idx].norm(dim=-1)
    on_pad = None if mask is None else (mask.to(idx.device)[rows, idx] == 0)
    return {"norms": norms, "on_pad": on_pad, "index": idx}


def check_initial_loss(ctx: CheckContext) -> list[Finding]:
    if ctx.model is not None and ctx.labels_outside_head():
        return [info("loss.initial", "initial loss not measured: labels fall outside the head (see labels.range)")]
    if not ctx.runnable():
        return []
    probe = _probe(ctx)
    if not probe["losses"]:
        return []
    loss = sum(probe["losses"]) / len(probe["losses"])
    if ctx.kind == "classification":
        return _classification_verdict(ctx, probe, loss)
    return _lm_verdict(ctx, probe, loss)


def _classification_verdict(ctx: CheckContext, probe: dict[str, Any], loss: float) -> list[Finding]:
    import torch

    c = ctx.num_labels or probe["width"]
    ref = math.log(c)
    ev = _evidence(ctx, probe)
    ev |= dict(loss=round(loss, 4), ln_num_classes=round(ref, 4), ratio=round(loss / ref, 3), num_classes=c)
    out: list[Finding] = []
    on_pad = [p["on_pad"] for p in probe["pooled"] if p.get("on_pad") is not None]
    pad_share = float(torch.cat(on_pad).float().mean()) if on_pad else None
    if pad_share:
        out.append(
            error(
                "pooling.pad_position",
                f"{pad_share:.0%} of rows are classified from a pad position, not their last real token",
                "pool the last token with attention_mask 1 (tunelab's mask pooling), and make model.config.pad_token_id "
                "equal tokenizer.pad_token_id",
                pooled_on_pad_share=round(pad_share, 4),
                config_pad_token_id=getattr(ctx.model.config, "pad_token_id", None),
                tokenizer_pad_token_id=ctx.tokenizer.pad_token_id,
            )
        )
    if not math.isfinite(loss):
        out.append(
            error("loss.initial", "initial loss is not finite", "check inputs and precision (fp16 overflow?)", **ev)
        )
    elif loss > LOSS_ERROR_RATIO * ref:
        cause, fix = _cause(ev, pad_share)
        out.append(
            error("loss.initial", f"initial loss {loss:.2f} is {loss / ref:.1f}x ln({c})={ref:.2f}: {cause}", fix, **ev)
        )
    elif loss > LOSS_WARN_RATIO * ref:
        cause, fix = _cause(ev, pad_share)
        out.append(warning("loss.initial", f"initial loss {loss:.2f} is {loss / ref:.2f}x ln({c}): {cause}", fix, **ev))
    else:
        out.append(info("loss.initial", f"initial loss {loss:.3f} vs ln({c}) = {ref:.3f}", **ev))
    return out


def _evidence(ctx: CheckContext, probe: dict[str, Any]) -> dict[str, Any]:
    import torch

    ev: dict[str, Any] = dict(logit_mean=probe["logit_mean"], logit_std=probe["logit_std"])
    head = probe["head"]
    if head is not None:
        ev["head_weight_std"] = float(head.weight.detach().float().std())
    init = getattr(getattr(ctx.model, "config", None), "initializer_range", None)
    if init:
        ev["initializer_range"] = init
    norms = [p["norms"] for p in probe["pooled"] if p.get("norms") is not None]
    if norms:
        ev["pooled_hidden_norm"] = float(torch.cat(norms).mean())
        ev["hidden_size"] = int(head.weight.shape[1]) if head is not None else None
    labels = [lb for lb in probe["labels"] if lb is not None]
    if labels:
        flat = torch.cat([lb.reshape(-1) for lb in labels])
        flat = flat[flat != -100]
        if flat.numel():
            ev["label_min"], ev["label_max"] = int(flat.min()), int(flat.max())
    return ev


def _cause(ev: dict[str, Any], pad_share: float | None) -> tuple[str, str]:
    """Name the first cause the evidence supports, and its fix."""
    norm = ev.get("pooled_hidden_norm")
    suggested = f"{TARGET_LOGIT_STD / norm:.1g}" if norm else "0.02"
    if pad_share:
        return (
            f"{pad_share:.0%} of rows are pooled from pad tokens",
            "fix the pooling (see pooling.pad_position); the loss follows",
        )
    head_std, init = ev.get("head_weight_std"), ev.get("initializer_range") or 0.02
    if head_std is not None and head_std > HEAD_STD_FACTOR * init:
        return (
            f"the classification head is initialised far too large (weight std {head_std:.3g} vs initializer_range {init:g}; "
            f"logit std {ev['logit_std']:.3g})",
            f"re-initialise the head small: model.head_init_std: {min(float(suggested), init):g}",
        )
    hidden = ev.get("hidden_size")
    if norm and hidden and norm > 10 * math.sqrt(hidden):
        return (
            f"the pooled hidden state has norm {norm:.3g} (~{norm / math.sqrt(hidden):.0f}x sqrt(hidden)): an unnormalised "
            "state feeds the head",
            f"model.head_init_std: {suggested} (logit std ~{TARGET_LOGIT_STD}), or pool after the final norm",
        )
    return (
        f"logits are too wide (std {ev['logit_std']:.3g}) for a fresh head",
        f"re-initialise the head small: model.head_init_std: {suggested}",
    )


def _lm_verdict(ctx: CheckContext, probe: dict[str, Any], loss: float) -> list[Finding]:
    vocab = int(probe["width"])
    ref = math.log(vocab)
    ev = dict(loss=round(loss, 4), ln_vocab=round(ref, 4), ratio=round(loss / ref, 3), logit_std=probe["logit_std"])
    if not math.isfinite(loss):
        return [error("loss.initial", "initial loss is not finite", "check the labels (all -100?) and precision", **ev)]
    if loss > LOSS_ERROR_RATIO * ref:
        return [
            error(
                "loss.initial",
                f"initial LM loss {loss:.2f} is {loss / ref:.1f}x a uniform guess ln({vocab})",
                "the output layer is mis-scaled or the labels are misaligned; check the model weights loaded",
                **ev,
            )
        ]
    if loss > 0.9 * ref:
        return [
            warning(
                "loss.initial",
                f"initial LM loss {loss:.2f} is at the uniform-guess level ln({vocab})={ref:.2f}: "
                "the weights look untrained",
                "check model.name_or_path points at pretrained weights",
                **ev,
            )
        ]
    return [info("loss.initial", f"initial LM loss {loss:.3f} (uniform guess {ref:.2f})", **ev)]


def check_grad_norm(ctx: CheckContext) -> list[Finding]:
    """One backward on one batch: overall gradient norm and its split head vs body."""
    model = ctx.model
    if not ctx.runnable():
        return []
    head_name, head = head_module(model, ctx.num_labels)
    head_ids = {id(p) for p in head.parameters()} if head is not None else set()
    device = model_device(model)
    batch = to_device(sample_batches(ctx, 1)[0], device)
    try:
        with train_mode(model, True):
            with autocast(ctx, device):
                loss = model(**batch).loss
            loss.float().backward()
        norms = {n: float(p.grad.detach().float().norm()) for n, p in model.named_parameters() if p.grad is not None}
        head_sq = sum(
            float(p.grad.detach().float().norm()) ** 2
            for p in model.parameters()
            if p.grad is not None and id(p) in head_ids
        )
    finally:
        model.zero_grad(set_to_none=True)
    head_std = float(head.weight.detach().float().std()) if head is not None else None
    return [_grad_verdict(ctx, norms, head_sq, head_name, head_std)]


def _grad_verdict(
    ctx: CheckContext, norms: dict[str, float], head_sq: float, head_name: str | None, head_std: float | None
) -> Finding:
    total = math.sqrt(sum(v * v for v in norms.values()))
    head = math.sqrt(head_sq)
    body = math.sqrt(max(0.0, total**2 - head_sq))
    top = max(norms, key=lambda n: norms[n]) if norms else None
    clip = ctx.cfg.training.max_grad_norm
    init = getattr(getattr(ctx.model, "config", None), "initializer_range", None) or 0.02
    ev = dict(
        grad_norm=total,
        head=head,
        body=body,
        head_module=head_name,
        largest_param=top,
        largest_param_norm=norms.get(top) if top else None,
        max_grad_norm=clip,
        head_weight_std=head_std,
    )
    if not math.isfinite(total):
        return error(
            "grad.init_norm",
            "gradient at initialisation is not finite",
            "check precision (fp16 overflow) and inputs",
            **ev,
        )
    threshold = max(GRAD_WARN, GRAD_CLIP_FACTOR * clip) if clip else GRAD_WARN
    if total <= threshold:
        return info(
            "grad.init_norm", f"gradient norm {total:.3g} at initialisation (head {head:.3g}, body {body:.3g})", **ev
        )
    oversized_head = head_std is not None and ctx.kind == "classification" and head_std > HEAD_STD_FACTOR * init
    if oversized_head:
        source = (
            f"the oversized head ({head_name}, weight std {head_std:.3g}) amplifies the gradient it sends into the body"
        )
        fix = f"re-initialise the head small: model.head_init_std: {init:g}"
    elif head > body:
        source, fix = (
            f"mostly from the head ({head_name})",
            f"re-initialise the head small: model.head_init_std: {init:g}",
        )
    else:
        source, fix = (
            f"mostly from the body (largest: {top})",
            "lower the learning rate, check inputs; keep max_grad_norm clipping on",
        )
    clip_note = f"; clipping at {clip:g} divides every update by ~{total / clip:.0f}" if clip else ""
    return warning("grad.init_norm", f"gradient norm {total:.1f} at initialisation: {source}{clip_note}", fix, **ev)
