"""Check 7, precision plan: evaluate the precision request against the device without raising.

`runtime.plan.decide_plan` is the one place precision is decided (and it raises DeviceError for
impossible requests); doctor must *report* instead, so the rules that make a plan invalid are
stated here as findings and the decided plan is then checked for internal consistency
(GradScaler only with fp16 autocast over fp32 master weights, QLoRA compute dtype = autocast).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tunelab.diagnostics.context import CheckContext
from tunelab.diagnostics.findings import Finding, error, info, warning

if TYPE_CHECKING:
    from tunelab.config.schema import Config
    from tunelab.runtime.plan import Capabilities, RuntimePlan


def check_precision(ctx: CheckContext) -> list[Finding]:
    caps = ctx.caps or _caps_of(ctx.plan)
    plan = ctx.plan
    if plan is None:  # decide it here; when none can be decided, the findings say why
        plan, found = plan_or_findings(ctx.cfg, caps)
        if plan is None:
            return found
        caps = caps or _caps_of(plan)
    return (request_findings(ctx.cfg, caps) if caps is not None else []) + plan_findings(plan)


def _caps_of(plan: RuntimePlan | None) -> Any:
    if plan is None or not plan.capabilities:
        return None
    from tunelab.runtime.plan import Capabilities

    data = dict(plan.capabilities)
    for key in ("cuda_capability", "cpu_flags"):
        if isinstance(data.get(key), list):
            data[key] = tuple(data[key])
    return Capabilities(**{k: v for k, v in data.items() if k in Capabilities.__dataclass_fields__})


def request_findings(cfg: Config, caps: Capabilities) -> list[Finding]:
    """What is wrong with the configured precision on this device (the rules decide_plan enforces)."""
    out: list[Finding] = []
    cuda = caps.device == "cuda"
    req = cfg.runtime.precision
    ev = dict(
        device=caps.device,
        device_name=caps.device_name,
        bf16_supported=caps.bf16_supported,
        cuda_capability=list(caps.cuda_capability) if caps.cuda_capability else None,
        requested=req,
    )
    if req == "fp16" and not cuda:
        out.append(
            error(
                "precision.fp16_cpu",
                "fp16 requested on a machine without CUDA: it would silently run as fp32",
                "set runtime.precision: auto (bf16 where supported) or fp32",
                **ev,
            )
        )
    if req == "bf16" and not caps.bf16_supported:
        out.append(
            error(
                "precision.bf16_unsupported",
                f"bf16 requested but {caps.device_name or caps.device} has no bf16 support",
                "set runtime.precision: auto",
                **ev,
            )
        )
    if cfg.model.dtype == "bfloat16" and (req == "fp16" or (req == "auto" and cuda and not caps.bf16_supported)):
        out.append(
            error(
                "precision.scaler_dtype",
                "bf16 weights with fp16 precision: an fp16 GradScaler would meet bf16 gradients",
                "set runtime.precision: bf16 (or auto), or model.dtype: float32",
                model_dtype=cfg.model.dtype,
                **ev,
            )
        )
    if cfg.model.dtype == "float16" and cfg.model.quantization.load_in_4bit is False and not cfg.model.lora.enabled:
        out.append(
            warning(
                "precision.fp16_master",
                "full fine-tuning with float16 weights: no fp32 master copy, updates underflow",
                "set model.dtype: auto (fp32 master weights with autocast)",
                model_dtype=cfg.model.dtype,
                **ev,
            )
        )
    quant = cfg.model.quantization
    if (quant.load_in_4bit or quant.load_in_8bit) and not cuda:
        out.append(
            error(
                "precision.quantization_device",
                "4/8-bit quantization needs a CUDA GPU with bitsandbytes",
                "turn model.quantization off (LoRA alone works on CPU) or run on a GPU",
                **ev,
            )
        )
    from tunelab.runtime.plan import GPU_ONLY_OPTIM_MARKERS

    if not cuda and any(m in cfg.training.optim for m in GPU_ONLY_OPTIM_MARKERS):
        out.append(
            error(
                "precision.optimizer_device",
                f"training.optim={cfg.training.optim} is a bitsandbytes 8-bit/paged optimizer and needs a CUDA GPU",
                "set training.optim: adamw_torch on CPU",
                optim=cfg.training.optim,
                **ev,
            )
        )
    if cfg.model.attn_implementation == "flash_attention_2" and not caps.flash_attn_available:
        out.append(
            error(
                "precision.attention",
                "flash_attention_2 requested but flash-attn is not installed or unsupported here",
                "set model.attn_implementation: auto (SDPA)",
                **ev,
            )
        )
    return out


def plan_findings(plan: RuntimePlan) -> list[Finding]:
    """Internal consistency of a decided (or hand-written) plan, plus an info line describing it."""
    out: list[Finding] = []
    ev = dict(
        precision=plan.precision,
        weight_dtype=plan.weight_dtype,
        autocast=plan.autocast_dtype,
        grad_scaler=plan.grad_scaler,
        tf32=plan.tf32,
        device=plan.device,
    )
    if plan.grad_scaler and plan.weight_dtype != "float32":
        out.append(
            error(
                "precision.scaler_dtype",
                f"GradScaler with {plan.weight_dtype} weights: the fp16 scaler cannot unscale "
                "non-fp32 gradients (bf16 weights + fp16 scaler)",
                "use precision bf16 with bf16 weights, or fp16 autocast over float32 master weights",
                **ev,
            )
        )
    if plan.grad_scaler and plan.autocast_dtype != "float16":
        out.append(
            warning(
                "precision.scaler_unneeded",
                "GradScaler without fp16 autocast: loss scaling only helps fp16",
                "drop the scaler (bf16 and fp32 do not underflow like fp16)",
                **ev,
            )
        )
    if plan.autocast_dtype == "float16" and not plan.grad_scaler:
        out.append(
            error(
                "precision.scaler_missing",
                "fp16 autocast without a GradScaler: small gradients flush to zero",
                "let decide_plan pick the scaler (precision: fp16 turns it on)",
                **ev,
            )
        )
    if plan.device == "cpu" and plan.precision == "fp16":
        out.append(
            error(
                "precision.fp16_cpu",
                "fp16 plan on CPU: accelerate silently runs it as fp32",
                "set runtime.precision: auto or fp32",
                **ev,
            )
        )
    if plan.qlora_compute_dtype is not None and plan.autocast_dtype and plan.qlora_compute_dtype != plan.autocast_dtype:
        out.append(
            error(
                "precision.qlora_compute_dtype",
                f"QLoRA compute dtype {plan.qlora_compute_dtype} differs from autocast {plan.autocast_dtype}",
                "set bnb_4bit_compute_dtype to the autocast dtype (decide_plan does this)",
                qlora_compute_dtype=plan.qlora_compute_dtype,
                **ev,
            )
        )
    caps = plan.capabilities or {}
    cc = caps.get("cuda_capability")
    if plan.device == "cuda" and cc and cc[0] >= 8 and not plan.tf32 and plan.precision == "fp32":
        out.append(
            info(
                "precision.tf32",
                "fp32 on an Ampere+ GPU with TF32 off: matmuls run at a fraction of TF32 speed",
                "set runtime.tf32: auto",
                **ev,
            )
        )
    if not any(f.severity == "error" for f in out):
        out.append(
            info(
                "precision.plan",
                f"precision {plan.precision}: weights {plan.weight_dtype}, "
                f"{'autocast ' + plan.autocast_dtype if plan.autocast_dtype else 'no autocast'}, "
                f"GradScaler {'on' if plan.grad_scaler else 'off'}",
                **ev,
            )
        )
    return out


def plan_or_findings(cfg: Config, caps: Capabilities | None = None) -> tuple[RuntimePlan | None, list[Finding]]:
    """decide_plan, with a DeviceError turned into findings instead of an exception (for doctor)."""
    from tunelab.errors import DeviceError
    from tunelab.runtime.plan import decide_plan, detect_capabilities

    try:
        caps = caps or detect_capabilities(cfg.runtime.device)
    except DeviceError as exc:
        return None, [error("precision.device", exc.message, exc.hint or "", requested_device=cfg.runtime.device)]
    try:
        return decide_plan(cfg, caps), []
    except DeviceError as exc:
        found = request_findings(cfg, caps)
        if not any(f.severity == "error" for f in found):  # a rule we do not mirror: keep its words
            found.append(error("precision.plan", exc.message, exc.hint or "", device=caps.device))
        return None, found
