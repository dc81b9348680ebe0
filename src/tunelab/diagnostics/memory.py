"""Check 8, memory plan: will weights + gradients + optimizer states + activations fit the device?

An estimate, not a measurement (doctor must answer before anything large is allocated): counts
come from the built model, or from the model's config instantiated on the `meta` device when the
model is too large to build. Activations follow Korthikanti et al. 2022 (per layer
b*s*h*(34 + 5*a*s/h) bytes at 16 bits; the attention-score term is dropped for SDPA/flash
kernels, which never store it), at the worst-case length `data.max_length`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tunelab.diagnostics.context import CheckContext
from tunelab.diagnostics.findings import Finding, error, info, warning

if TYPE_CHECKING:
    from tunelab.config.schema import Config

GIB = 1024**3
WARN_SHARE = 0.85  # above this share of device memory: fragmentation and spikes tip it over
CUDA_CONTEXT_BYTES = int(0.8 * GIB)  # CUDA context + allocator slack, measured typical
_WEIGHT_BYTES = {"float32": 4.0, "bfloat16": 2.0, "float16": 2.0}
# Optimizer state bytes per trainable parameter.
_OPTIM_BYTES = {
    "adamw_torch": 8,
    "adamw_torch_fused": 8,
    "adamw_hf": 8,
    "adamw": 8,
    "adafactor": 4,
    "sgd": 4,
    "adamw_bnb_8bit": 2,
    "adamw_8bit": 2,
    "paged_adamw_8bit": 2,
    "paged_adamw_32bit": 8,
    "lion_8bit": 1,
}


@dataclass
class Shape:
    params: int
    trainable: int
    hidden: int
    layers: int
    heads: int
    vocab: int
    built: bool
    intermediate: int = 0
    head: int = 0  # a fresh task head's parameters: trained in full even under LoRA (peft modules_to_save)
    gated_mlp: bool = False  # llama-style decoder (gate/up/down MLP, q/k norms, rotary)


def check_memory(ctx: CheckContext) -> list[Finding]:
    cfg = ctx.cfg
    caps = (ctx.plan.capabilities if ctx.plan else None) or (vars(ctx.caps) if ctx.caps else {})
    device_bytes = caps.get("device_memory_bytes")
    shape = ctx.cache.get("model_shape") or model_shape(cfg, ctx.model)
    if shape is None:
        return []
    device = caps.get("device", "cpu")
    setup = Setup.of(cfg, _weight_dtype(ctx))
    est = estimate(cfg, shape, ctx.kind, setup, device)
    ev: dict[str, Any] = {f"{k}_gib": round(v / GIB, 3) for k, v in est.items()}
    ev |= {"params_m": round(shape.params / 1e6, 2), "trainable_m": round(est["gradients"] / 4 / 1e6, 3)}
    if not device_bytes:
        return [info("memory.plan", "memory estimate (device memory unknown)", **ev)]
    ev["device_gib"] = round(device_bytes / GIB, 3)
    ev["share"] = round(est["total"] / device_bytes, 3)
    out = _offload_findings(cfg, est["weights"], device_bytes, ev)
    if out:
        return out
    if est["total"] > WARN_SHARE * device_bytes:
        options = alternatives(cfg, shape, ctx.kind, setup, device, bool(caps.get("bf16_supported")))
        ev["alternatives_gib"] = {key: round(gib, 2) for key, _, gib in options}
        fix = _advice(options, device_bytes)
        if est["total"] > device_bytes:
            return [
                error(
                    "memory.fit",
                    f"estimated {est['total'] / GIB:.2f} GiB needed, device has {device_bytes / GIB:.2f} GiB",
                    fix,
                    **ev,
                )
            ]
        return [warning("memory.tight", f"estimated {ev['share']:.0%} of device memory", fix, **ev)]
    return [info("memory.plan", f"estimated {est['total'] / GIB:.2f} GiB of {device_bytes / GIB:.2f} GiB", **ev)]


def _weight_dtype(ctx: CheckContext) -> str:
    if ctx.plan is not None:
        return ctx.plan.weight_dtype
    return ctx.cfg.model.dtype if ctx.cfg.model.dtype != "auto" else "float32"


@dataclass(frozen=True)
class Setup:
    """The knobs the estimate depends on (the configured ones, or an alternative to recommend)."""

    weight_dtype: str
    lora: bool
    load_in_4bit: bool
    load_in_8bit: bool
    gradient_checkpointing: bool
    batch: int

    @classmethod
    def of(cls, cfg: Config, weight_dtype: str) -> Setup:
        q = cfg.model.quantization
        return cls(
            weight_dtype,
            cfg.model.lora.enabled,
            q.load_in_4bit,
            q.load_in_8bit,
            cfg.training.gradient_checkpointing,
            cfg.training.per_device_train_batch_size,
        )


def lora_params(cfg: Config, shape: Shape) -> int:
    """Adapter parameters: r x (in + out) per adapted projection, 7 projections per layer (+ the head)."""
    return shape.layers * cfg.model.lora.r * (8 * shape.hidden + 3 * (shape.hidden + shape.intermediate)) + shape.head


def estimate(cfg: Config, shape: Shape, kind: str, setup: Setup, device: str) -> dict[str, float]:
    """Bytes per component for one training step at the batch of `setup` and max_length."""
    wbytes = 0.55 if setup.load_in_4bit else 1.0 if setup.load_in_8bit else _WEIGHT_BYTES.get(setup.weight_dtype, 4.0)
    if setup.lora:
        trainable = shape.trainable if (shape.built and cfg.model.lora.enabled) else lora_params(cfg, shape)
    else:
        trainable = shape.params
    optim = _OPTIM_BYTES.get(cfg.training.optim, 8)
    b, s = setup.batch, cfg.data.max_length
    if kind == "seq2seq":
        s += cfg.task.target_token_limit() or 0
    act_scale = 1.0 if cfg.runtime.precision in ("bf16", "fp16") or setup.weight_dtype != "float32" else 2.0
    fused_attention = cfg.model.attn_implementation in ("auto", "sdpa", "flash_attention_2")
    attn_term = 0.0 if fused_attention else 5.0 * shape.heads * s / max(shape.hidden, 1)
    per_layer = b * s * shape.hidden * (34.0 + attn_term) * act_scale
    if shape.gated_mlp and shape.intermediate:
        # Measured with saved-tensor hooks on Qwen3 (SDPA): ~10h + 5i values kept per token per
        # layer (the gated MLP keeps gate, up, activation and product; q/k norms and rotary keep
        # copies), 2 bytes each under 16-bit autocast, 4 in fp32.
        per_layer = b * s * (10.0 * shape.hidden + 5.0 * shape.intermediate) * 2.0 * act_scale
        per_layer += b * s * shape.hidden * attn_term * act_scale
    if setup.gradient_checkpointing:  # only each layer's input is kept, one layer recomputed at a time
        activations = shape.layers * b * s * shape.hidden * 2 * act_scale + per_layer
    else:
        # Backward also holds the gradients of the layer it is in: about one layer's activations.
        activations = (shape.layers + (1 if shape.gated_mlp else 0)) * per_layer
    logits = 2 * b * s * shape.vocab * 4.0 if kind != "classification" else 0.0  # fp32 logits + their grad
    est = {
        "weights": shape.params * wbytes,
        "gradients": trainable * 4.0,
        "optimizer": trainable * float(optim),
        "activations": activations + logits,
        "overhead": float(CUDA_CONTEXT_BYTES if device == "cuda" else 0),
    }
    est["total"] = sum(est.values())
    return est


def alternatives(
    cfg: Config, shape: Shape, kind: str, current: Setup, device: str, bf16: bool
) -> list[tuple[str, str, float]]:
    """(short name, what to set, estimated GiB) for the usual ways to shrink a run, smallest change first.

    Only changes that turn on something the config does not already use (advising "enable LoRA"
    to a LoRA run would be noise); the last option also lowers the batch size.
    """
    from dataclasses import replace

    half = "bfloat16" if device == "cuda" and bf16 else current.weight_dtype  # frozen base weights need no fp32 copy
    c = current
    candidates = [
        (
            "grad_ckpt",
            not c.gradient_checkpointing,
            "training.gradient_checkpointing: true",
            replace(c, gradient_checkpointing=True),
        ),
        ("lora", not c.lora, "model.lora.enabled: true", replace(c, lora=True, weight_dtype=half)),
        (
            "lora+ckpt",
            not (c.lora and c.gradient_checkpointing),
            "model.lora.enabled: true and training.gradient_checkpointing: true",
            replace(c, lora=True, weight_dtype=half, gradient_checkpointing=True),
        ),
        (
            "qlora+ckpt",
            device == "cuda" and not (c.lora and c.load_in_4bit and c.gradient_checkpointing),
            "QLoRA: model.lora.enabled: true, model.quantization.load_in_4bit: true, training.gradient_checkpointing: true",
            replace(c, lora=True, load_in_4bit=True, load_in_8bit=False, gradient_checkpointing=True),
        ),
    ]
    options: list[tuple[str, str, Setup]] = []
    for key, wanted, label, setup in candidates:
        if wanted and setup != c and all(setup != o[2] for o in options):
            options.append((key, label, setup))
    small = max(1, c.batch // 4)
    if c.batch > 1:
        prefix, base = (f"{options[-1][1]}, ", options[-1][2]) if options else ("", c)
        options.append(
            (
                f"smallest+batch{small}",
                f"{prefix}training.per_device_train_batch_size: {small} "
                "(raise gradient_accumulation_steps to keep the effective batch)",
                replace(base, batch=small),
            )
        )
    return [(key, label, estimate(cfg, shape, kind, setup, device)["total"] / GIB) for key, label, setup in options]


def offload_folder(cfg: Config) -> str | None:
    """Where offloaded weights go: generative tasks place the model with device_map and put the
    folder inside the run (models/placement.py: <run_dir>/offload, at train and predict time);
    classification loads the model whole, with no placement and so no offload folder."""
    from tunelab.models.placement import OFFLOAD_DIR

    return f"<run_dir>/{OFFLOAD_DIR}" if cfg.task.generative else None


def _offload_findings(cfg: Config, weight_bytes: float, device_bytes: int, ev: dict[str, Any]) -> list[Finding]:
    device_map = cfg.model.device_map
    if device_map is None:
        return []
    folder = offload_folder(cfg)
    values = set(device_map.values()) if isinstance(device_map, dict) else set()
    offloads = "disk" in values or (isinstance(device_map, str) and weight_bytes > device_bytes)
    if offloads and not folder:
        return [
            error(
                "memory.offload_folder",
                f"device_map {device_map!r} would offload weights ({weight_bytes / GIB:.2f} GiB of "
                f"weights, {device_bytes / GIB:.2f} GiB device) but a {cfg.task.type} run has no offload folder "
                "(it loads the model whole, without placement)",
                "use a model that fits the device (or a larger device); offloaded placement is for the generative "
                "tasks (summarization, sft), which offload to <run_dir>/offload",
                device_map=str(device_map),
                task=cfg.task.type,
                **ev,
            )
        ]
    if offloads:
        return [
            warning(
                "memory.offload",
                "weights are offloaded: every step streams them from CPU/disk (very slow training)",
                "use LoRA/QLoRA so the model fits the device",
                device_map=str(device_map),
                offload_folder=folder,
                **ev,
            )
        ]
    return []


def _advice(options: list[tuple[str, str, float]], device_bytes: int) -> str:
    """The first alternative that fits (with its estimate), else the smallest one."""
    if not options:
        return "use a device with more memory"
    limit = WARN_SHARE * device_bytes / GIB
    fitting = [o for o in options if o[2] <= limit]
    _, label, gib = fitting[0] if fitting else min(options, key=lambda o: o[2])
    tail = "" if fitting else " (still too large: use a bigger device or several with FSDP/DeepSpeed)"
    return f"set {label}: ~{gib:.1f} GiB{tail}"


def model_shape(cfg: Config, model: Any = None) -> Shape | None:
    """Parameter counts and dimensions from the built model, or from its config on `meta`."""
    config = getattr(model, "config", None)
    built = model is not None
    if config is None:
        config = _load_config(cfg)
        if config is None:
            return None
        model = _meta_model(cfg, config)
        if model is None:
            return None
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    hidden, layers, heads, vocab = _dims(config)
    inter = int(getattr(config, "intermediate_size", None) or getattr(config, "encoder_ffn_dim", None) or 4 * hidden)
    return Shape(params, trainable, hidden, layers, heads, vocab, built, inter, gated_mlp=_gated_mlp(config))


def _gated_mlp(config: Any) -> bool:
    """A llama-style decoder block (by capability: its family's LoRA targets include gate_proj)."""
    from tunelab.models.families import family_of

    try:
        family = family_of(config)
    except ValueError:
        return False
    return family.is_decoder_only and "gate_proj" in family.lora_target_modules


def _dims(config: Any) -> tuple[int, int, int, int]:
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    hidden = getattr(text, "hidden_size", None) or getattr(text, "d_model", None) or 0
    layers = getattr(text, "num_hidden_layers", None) or (
        getattr(text, "encoder_layers", 0) + getattr(text, "decoder_layers", 0)
    )
    heads = getattr(text, "num_attention_heads", None) or getattr(text, "encoder_attention_heads", 1) or 1
    return int(hidden), int(layers or 0), int(heads), int(getattr(text, "vocab_size", 0) or 0)


def _load_config(cfg: Config) -> Any:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(
            cfg.model.name_or_path, revision=cfg.model.revision, trust_remote_code=cfg.model.trust_remote_code
        )
    except (OSError, ValueError):
        return None


def _meta_model(cfg: Config, config: Any) -> Any:
    """The architecture with no storage (meta device): exact parameter counts at zero cost."""
    import torch
    from transformers import AutoModel, AutoModelForCausalLM, AutoModelForSeq2SeqLM

    # A classifier's head is not in the checkpoint's architecture: its body (AutoModel) is what loads.
    classes = [AutoModelForSeq2SeqLM, AutoModelForCausalLM, AutoModel] if cfg.task.generative else [AutoModel]
    for cls in classes:
        try:
            with torch.device("meta"):
                return cls.from_config(config, trust_remote_code=cfg.model.trust_remote_code)
        except (ValueError, KeyError, TypeError):
            continue
    return None
