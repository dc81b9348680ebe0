"""Model FLOPs per training token and MFU (model FLOPs utilisation), counted from a model config.

MFU = (model FLOPs of the real tokens trained per second) / (the device's peak dense FLOP/s).
Only real tokens count: padding is computed but is not model work, so padding waste shows up as
lower MFU (that is the point of the number). The count follows PaLM (Chowdhery et al. 2022, app. B):

    training FLOPs per token = 6 * N  +  12 * L * H * Q * t        (full fine-tune)
                               4 * N  +  6 * N_adapter  +  12 * L * H * Q * t    (LoRA: frozen base)

- N: parameters that take part in a matmul per token (attention q/k/v/o, MLP, the classification
  head): forward 2 FLOPs per parameter, backward 4 (gradient w.r.t. inputs and weights). The
  embedding lookup is not a matmul and is excluded. With LoRA the frozen base needs no weight
  gradient: 2 + 2 per base parameter, the adapters the full 6.
- 12 * L * H * Q * t: attention scores and weighted values (2 matmuls of 2 * t * H * Q FLOPs
  forward per layer, x3 for training) for a token in a sequence of t tokens (L layers, H query
  heads, Q head dim). Counted non-causally, as PaLM does; summed over each sample's own length
  (packed samples attend only within themselves).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# Peak dense (no sparsity) tensor-core FLOP/s by precision, from the vendors' datasheets.
# Matched on the device name torch reports; "tf32" is what fp32 matmuls run at with TF32 on.
PEAK_FLOPS: dict[str, dict[str, float]] = {
    "H200": {"bf16": 989.4e12, "fp16": 989.4e12, "tf32": 494.7e12},
    "H100 SXM": {"bf16": 989.4e12, "fp16": 989.4e12, "tf32": 494.7e12},
    "H100 80GB HBM3": {"bf16": 989.4e12, "fp16": 989.4e12, "tf32": 494.7e12},
    "H100 PCIe": {"bf16": 756.5e12, "fp16": 756.5e12, "tf32": 378.0e12},
    "A100": {"bf16": 312e12, "fp16": 312e12, "tf32": 156e12},
    "L40S": {"bf16": 362.05e12, "fp16": 362.05e12, "tf32": 183.0e12},
    "L4": {"bf16": 121e12, "fp16": 121e12, "tf32": 60e12},
    "A10": {"bf16": 125e12, "fp16": 125e12, "tf32": 62.5e12},
    "V100": {"bf16": 0.0, "fp16": 125e12, "tf32": 15.7e12},  # no bf16 tensor cores; fp32 CUDA cores
    "T4": {"bf16": 0.0, "fp16": 65e12, "tf32": 8.1e12},
}


def matmul_params(config: Any, num_labels: int | None = None) -> int:
    """Parameters in per-token matmuls of a decoder (Llama/Qwen layout) plus its classification head."""
    h = config.hidden_size
    heads = config.num_attention_heads
    kv = getattr(config, "num_key_value_heads", None) or heads
    q = getattr(config, "head_dim", None) or h // heads
    attn = h * heads * q + 2 * h * kv * q + heads * q * h
    mlp = 3 * h * config.intermediate_size  # gate, up, down
    head = h * (num_labels if num_labels is not None else getattr(config, "num_labels", 0))
    return config.num_hidden_layers * (attn + mlp) + head


def training_flops(
    config: Any, lengths: Sequence[int], *, lora_params: int = 0, num_labels: int | None = None
) -> float:
    """Model FLOPs to train on samples of these lengths once (see the module docstring)."""
    n = matmul_params(config, num_labels)
    heads = config.num_attention_heads
    q = getattr(config, "head_dim", None) or config.hidden_size // heads
    tokens = sum(lengths)
    per_param = (4 * n + 6 * lora_params) if lora_params else 6 * n
    attention = 12 * config.num_hidden_layers * heads * q * sum(t * t for t in lengths)
    return float(per_param * tokens + attention)


def peak_flops(device_name: str, precision: str) -> tuple[float, str]:
    """(peak FLOP/s, source) for a device and training precision; (0, reason) when unknown."""
    key = "tf32" if precision == "fp32" else precision
    for name, peaks in PEAK_FLOPS.items():
        if name.lower() in device_name.lower() and peaks.get(key):
            return peaks[key], f"{name} {key} datasheet"
    return 0.0, f"no datasheet peak for {device_name!r} {key}"


def measured_matmul_peak(device: str, precision: str, size: int = 1024, repeats: int = 5) -> float:
    """FLOP/s of a square matmul measured here: the stand-in peak on a CPU (dry runs) or an
    unknown device, so MFU there is relative to what this machine's matmul reaches."""
    import time

    import torch

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
    if device == "cpu" and dtype is torch.float16:
        dtype = torch.float32
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    a @ b
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync()
    return 2 * size**3 * repeats / (time.perf_counter() - start)
