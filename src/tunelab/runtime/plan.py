"""What this machine can do, and the one plan decided from it.

Decided once per run, printed, stored in the run directory (`runtime_plan.json`), and read by
models/, training/, diagnostics/ and bench/. This is the ground floor: it imports nothing of
tunelab's beyond config and errors, so every other package may import it.
"""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass, field
from typing import Any

from tunelab.config.schema import Config
from tunelab.errors import DeviceError


@dataclass(frozen=True)
class Capabilities:
    device: str  # "cuda" | "cpu"
    device_name: str
    cuda_capability: tuple[int, int] | None
    bf16_supported: bool
    device_memory_bytes: int | None
    cpu_count: int
    cpu_flags: tuple[str, ...] = ()
    flash_attn_available: bool = False
    liger_available: bool = False
    bitsandbytes_available: bool = False
    world_size: int = 1


@dataclass(frozen=True)
class RuntimePlan:
    device: str
    precision: str  # effective: "fp32" | "bf16" | "fp16"
    weight_dtype: str  # dtype of loaded (trainable) weights: "float32" normally (fp32 master copy)
    autocast_dtype: str | None  # "bfloat16" | "float16" | None
    grad_scaler: bool  # only with fp16 autocast over fp32 master weights
    tf32: bool
    attn_implementation: str  # "sdpa" | "eager" | "flash_attention_2"
    varlen_attention: bool  # a kernel that takes cu_seqlens exists (packing is cheap)
    torch_compile: bool
    gradient_checkpointing: bool
    liger_kernels: bool
    dataloader_num_workers: int
    dataloader_pin_memory: bool
    dataloader_persistent_workers: bool
    dataloader_prefetch_factor: int | None
    qlora_compute_dtype: str | None
    attn_reason: str = ""  # why this attention implementation (also in runtime_plan.json)
    compile_reason: str = ""  # why torch.compile is on or off
    notes: list[str] = field(default_factory=list)
    capabilities: dict[str, Any] = field(default_factory=dict)
    # Why weight_dtype is what it is: fp32 master weights for a full fine-tune, half-precision
    # base weights only when nothing but adapters trains.
    weight_dtype_reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        amp = f"autocast {self.autocast_dtype}" if self.autocast_dtype else "no autocast"
        return (
            f"device={self.device} precision={self.precision} (weights {self.weight_dtype}, {amp}, "
            f"GradScaler {'on' if self.grad_scaler else 'off'}) tf32={self.tf32} attn={self.attn_implementation} "
            f"compile={self.torch_compile} workers={self.dataloader_num_workers} pin_memory={self.dataloader_pin_memory}"
        )


def _cpu_flags() -> tuple[str, ...]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return tuple(sorted(set(line.split(":", 1)[1].split())))
    except OSError:
        pass
    return ()


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def native_cuda_bf16(major: int) -> bool:
    """bf16 the GPU computes natively (Ampere, sm80, and newer).

    `torch.cuda.is_bf16_supported()` alone says True on T4 (sm75) and V100 (sm70): it counts
    emulation, where bf16 matmuls run slowly through fp32 and flash-attn refuses to start.
    """
    import torch

    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # a torch without the argument: the capability says it
        return major >= 8


def detect_capabilities(requested_device: str = "auto") -> Capabilities:
    import torch

    use_cuda = torch.cuda.is_available() and requested_device in ("auto", "cuda")
    if requested_device == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            "runtime.device is cuda but no CUDA device is visible", hint="set runtime.device: auto or cpu"
        )
    flags = _cpu_flags()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if use_cuda:
        idx = torch.cuda.current_device()
        props = torch.cuda.get_device_properties(idx)
        return Capabilities(
            device="cuda",
            device_name=props.name,
            cuda_capability=(props.major, props.minor),
            bf16_supported=native_cuda_bf16(props.major),
            device_memory_bytes=int(props.total_memory),
            cpu_count=os.cpu_count() or 1,
            cpu_flags=(),
            flash_attn_available=_importable("flash_attn") and props.major >= 8,
            liger_available=_importable("liger_kernel"),
            bitsandbytes_available=_importable("bitsandbytes"),
            world_size=world,
        )
    import psutil

    return Capabilities(
        device="cpu",
        device_name=platform.processor() or platform.machine(),
        cuda_capability=None,
        # avx512_bf16 (or AMX) makes CPU bf16 autocast fast and exact enough; without it bf16 is emulated.
        bf16_supported=("avx512_bf16" in flags or "amx_bf16" in flags),
        device_memory_bytes=int(psutil.virtual_memory().total),
        cpu_count=os.cpu_count() or 1,
        cpu_flags=tuple(f for f in flags if f.startswith(("avx", "amx"))),
        world_size=world,
    )


def _precision(cfg: Config, caps: Capabilities, notes: list[str]) -> str:
    cuda = caps.device == "cuda"
    req = cfg.runtime.precision
    if req == "fp16" and not cuda:
        # fp16=True on CPU is a silent no-op in accelerate: refuse instead of running fp32 unknowingly.
        raise DeviceError(
            "runtime.precision is fp16 but this machine has no CUDA device (fp16 would silently run as fp32)",
            hint="use precision: auto (bf16 where supported) or fp32",
        )
    if req == "bf16" and not caps.bf16_supported:
        raise DeviceError(
            f"runtime.precision is bf16 but {caps.device_name or caps.device} does not support bf16",
            hint="use precision: auto",
        )
    if req != "auto":
        return req
    precision = "bf16" if caps.bf16_supported else ("fp16" if cuda else "fp32")
    notes.append(f"precision auto -> {precision} ({'bf16 supported' if caps.bf16_supported else 'no bf16'})")
    return precision


def _weight_dtype(cfg: Config, caps: Capabilities, precision: str) -> tuple[str, str]:
    """(weight dtype, why). Any full fine-tune keeps fp32 master weights (autocast computes in
    bf16/fp16 on top); bf16 base weights only when just adapters (+ head) train, in fp32."""
    quant = cfg.model.quantization
    if (quant.load_in_4bit or quant.load_in_8bit) and caps.device != "cuda":
        raise DeviceError(
            "model.quantization (4-bit/8-bit) needs a CUDA GPU with bitsandbytes; this machine has none",
            hint="turn quantization off (LoRA alone works on CPU) or run on a GPU machine",
        )
    lora = cfg.model.lora.enabled
    if cfg.model.dtype != "auto":
        weight_dtype = cfg.model.dtype
        reason = f"model.dtype={weight_dtype} set explicitly"
        if weight_dtype != "float32" and not lora:
            reason += " for a full fine-tune: no fp32 master copy, small updates are lost (model.dtype: auto keeps one)"
    elif lora and caps.device == "cuda" and precision == "bf16":
        weight_dtype = "bfloat16"
        reason = "LoRA: only adapters and head train (kept fp32); the frozen base needs no fp32 master copy"
    else:
        weight_dtype = "float32"
        autocast = f", {precision} autocast on top" if precision in ("bf16", "fp16") else ""
        if not lora:
            reason = "full fine-tune: fp32 master weights" + autocast
        else:
            why = "bf16 base weights are used on CUDA only" if caps.device != "cuda" else "no native bf16 here"
            reason = f"LoRA: fp32 base ({why}){autocast}"
    if weight_dtype == "bfloat16" and precision == "fp16":
        raise DeviceError(
            "model.dtype bfloat16 with fp16 precision would meet an fp16 GradScaler",
            hint="use precision: bf16 (or auto), or model.dtype: float32",
        )
    # A full fine-tune with fp16 weights under fp16 autocast + GradScaler fails at the first unscale
    # ("Attempting to unscale FP16 gradients") or, without it, loses small updates to fp16 rounding:
    # the GradScaler needs fp32 master weights. Frozen fp16 bases (LoRA/QLoRA) are fine: their
    # trainable adapters are fp32.
    if weight_dtype == "float16" and precision == "fp16" and not lora:
        raise DeviceError(
            "model.dtype float16 with precision fp16 for a full fine-tune: the fp16 GradScaler needs fp32 master weights",
            hint="use model.dtype: auto (fp32 master weights) or enable model.lora",
        )
    return weight_dtype, reason


def _tf32(cfg: Config, caps: Capabilities) -> bool:
    # TF32 matmuls exist from Ampere (sm80) on; fp32 matmuls there run ~8x faster at 10-bit mantissa.
    ampere = caps.device == "cuda" and caps.cuda_capability is not None and caps.cuda_capability[0] >= 8
    return ampere and cfg.runtime.tf32 is not False


def _attention(cfg: Config, caps: Capabilities, precision: str, model_config: Any) -> tuple[str, str]:
    """(attention implementation, reason). flash-attn only where the package, the GPU (sm80+), half
    precision and the model class (transformers' own `_supports_flash_attn` flag) all allow it."""
    requested = cfg.model.attn_implementation
    if requested == "flash_attention_2" and not caps.flash_attn_available:
        raise DeviceError(
            "flash_attention_2 requested but flash-attn is not installed or unsupported here (needs CUDA sm80+)",
            hint="use attn_implementation: auto (SDPA), or pip install 'tunelab[flash]' on an Ampere+ GPU",
        )
    if requested != "auto":
        return requested, f"model.attn_implementation: {requested}"
    if not caps.flash_attn_available:
        why = "no CUDA" if caps.device != "cuda" else "flash-attn not installed or GPU older than sm80"
        return "sdpa", f"sdpa: {why}"
    if precision not in ("bf16", "fp16"):
        return "sdpa", f"sdpa: flash-attn needs bf16/fp16, precision is {precision}"
    supported, model_name = model_supports_flash(cfg, model_config)
    if not supported:
        return "sdpa", f"sdpa: {model_name} does not declare flash-attn support (_supports_flash_attn)"
    return "flash_attention_2", f"flash_attention_2: installed, sm80+, {precision}, {model_name} supports it"


def model_supports_flash(cfg: Config, model_config: Any = None) -> tuple[bool, str]:
    """(supported, class name) from transformers' capability flag on the model's base class.

    The flag sits on the architecture's PreTrainedModel, shared by all its heads, so the base model
    class of the config's type answers for classification, causal-LM and seq2seq alike. An
    unreadable config counts as unsupported: SDPA works for every architecture.
    """
    if model_config is None:
        try:
            from transformers import AutoConfig

            model_config = AutoConfig.from_pretrained(
                cfg.model.name_or_path, revision=cfg.model.revision, trust_remote_code=cfg.model.trust_remote_code
            )
        except Exception as exc:  # a probe: an unreadable config only means "use SDPA"
            return False, f"the model (config unreadable: {str(exc).splitlines()[0][:80]})"
    from transformers.models.auto.modeling_auto import MODEL_MAPPING

    try:
        cls = MODEL_MAPPING[type(model_config)]
    except KeyError:
        return False, f"model_type {getattr(model_config, 'model_type', '?')!r} (no transformers class)"
    flag = getattr(cls, "_supports_flash_attn", None) or getattr(cls, "_supports_flash_attn_2", None)
    return bool(flag), cls.__name__


def _check_liger(cfg: Config, caps: Capabilities) -> None:
    if cfg.runtime.liger_kernels and not (caps.device == "cuda" and caps.liger_available):
        raise DeviceError(
            "runtime.liger_kernels needs CUDA and the liger-kernel package",
            hint="pip install 'tunelab[liger]' on a GPU machine, or turn it off",
        )


def _compile(cfg: Config) -> tuple[bool, str]:
    if cfg.training.torch_compile:
        return True, "torch.compile on (training.torch_compile: true)"
    # Measured: a cold compile takes ~20 s on CPU and minutes on GPU for a 4B model, and every new
    # padded length recompiles (dynamic/grouped batches vary in length), so short fine-tunes lose
    # more time compiling than they gain; turn it on for long runs with packed or max_length batches.
    return False, "torch.compile off (default): cold compile ~20 s+ and recompiles per batch length"


def _loader(cfg: Config, caps: Capabilities) -> tuple[int, bool]:
    """(workers, pin_memory)."""
    cuda = caps.device == "cuda"
    workers_cfg = cfg.training.dataloader_num_workers
    if workers_cfg == "auto":
        # Tokenized Arrow data needs little CPU per batch; a couple of workers keep a GPU fed.
        # On CPU the workers would steal cores from the matmuls, so none.
        workers = min(4, max(1, caps.cpu_count // max(1, caps.world_size) // 2)) if cuda else 0
    else:
        workers = int(workers_cfg)
    pin_cfg = cfg.training.dataloader_pin_memory
    return workers, (cuda if pin_cfg == "auto" else bool(pin_cfg))


# bitsandbytes optimizers (paged_adamw_8bit, adamw_bnb_8bit, paged_adamw_32bit, ...): CUDA only.
GPU_ONLY_OPTIM_MARKERS = ("8bit", "paged", "bnb")


def _check_optimizer(cfg: Config, caps: Capabilities) -> None:
    # Off-GPU, bitsandbytes' optimizers run silently slow or fail deep inside the Trainer: refuse
    # them here, for every task, before anything is loaded.
    optim = cfg.training.optim
    if caps.device != "cuda" and any(m in optim for m in GPU_ONLY_OPTIM_MARKERS):
        raise DeviceError(
            f"training.optim={optim} is a bitsandbytes 8-bit/paged optimizer and needs a CUDA GPU; this machine has none",
            hint="use optim: adamw_torch on CPU",
        )


def decide_plan(cfg: Config, caps: Capabilities | None = None, model_config: Any = None) -> RuntimePlan:
    """The single precision / kernel / loader policy. Raises DeviceError for impossible requests.

    `model_config` (a transformers config) answers whether the model class supports flash-attn;
    without it the config of `cfg.model.name_or_path` is read, and only where flash-attn is possible.
    """
    caps = caps or detect_capabilities(cfg.runtime.device)
    _check_optimizer(cfg, caps)
    _check_liger(cfg, caps)
    notes: list[str] = []
    precision = _precision(cfg, caps, notes)
    weight_dtype, weight_reason = _weight_dtype(cfg, caps, precision)
    attn, attn_reason = _attention(cfg, caps, precision, model_config)
    tf32 = _tf32(cfg, caps)
    compile_on, compile_reason = _compile(cfg)
    notes += [f"attention {attn_reason}", compile_reason]
    workers, pin = _loader(cfg, caps)
    return RuntimePlan(
        device=caps.device,
        precision=precision,
        weight_dtype=weight_dtype,
        autocast_dtype={"bf16": "bfloat16", "fp16": "float16"}.get(precision),
        # GradScaler only over fp32 master weights (checked above): bf16 weights never meet one.
        grad_scaler=precision == "fp16",
        tf32=tf32,
        attn_implementation=attn,
        varlen_attention=attn == "flash_attention_2",
        torch_compile=compile_on,
        gradient_checkpointing=cfg.training.gradient_checkpointing,
        liger_kernels=cfg.runtime.liger_kernels,
        dataloader_num_workers=workers,
        dataloader_pin_memory=pin,
        dataloader_persistent_workers=workers > 0,
        dataloader_prefetch_factor=2 if workers > 0 else None,
        qlora_compute_dtype=("bfloat16" if precision == "bf16" else "float16")
        if cfg.model.quantization.load_in_4bit
        else None,
        attn_reason=attn_reason,
        compile_reason=compile_reason,
        notes=notes,
        capabilities=asdict(caps),
        weight_dtype_reason=weight_reason,
    )


def autocast_context(plan: RuntimePlan | None, device_type: str | None = None) -> Any:
    """The plan's autocast for code that runs the model outside the Trainer (prediction, doctor's
    probes), so they see the numbers training sees; a no-op without a plan or autocast dtype."""
    import contextlib

    if plan is None or not getattr(plan, "autocast_dtype", None):
        return contextlib.nullcontext()
    import torch

    return torch.autocast(device_type=device_type or plan.device, dtype=getattr(torch, plan.autocast_dtype))


def plan_for_model(plan: RuntimePlan, model: Any) -> RuntimePlan:
    """The plan with the attention implementation the loaded model really uses (after a fallback
    at load time), so collators never send flash-attn varlen kwargs to an SDPA model."""
    actual = getattr(getattr(model, "config", None), "_attn_implementation", None)
    if not isinstance(actual, str) or not actual or actual == plan.attn_implementation:
        return plan
    from dataclasses import replace

    return replace(
        plan,
        attn_implementation=actual,
        varlen_attention=actual == "flash_attention_2",
        attn_reason=f"{actual}: fell back at load time from {plan.attn_implementation}",
    )


def apply_global_settings(plan: RuntimePlan) -> None:
    """Process-wide switches the plan implies (TF32 matmuls)."""
    import torch

    if plan.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = plan.tf32
        torch.backends.cudnn.allow_tf32 = plan.tf32
