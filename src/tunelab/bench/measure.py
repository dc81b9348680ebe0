"""The measuring loop behind `tunelab bench`: one configuration, a fixed number of optimizer steps.

This is a measuring harness, not the product trainer: a plain, correct step loop (forward,
backward, AdamW step) that is identical for every configuration, so the only thing that differs
between rows of the table is the batching / precision / loader setting being compared. The HF
Trainer adds its own (constant) overhead on top; the comparison between rows is what matters.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

WARMUP_STEPS = 3


@dataclass
class BenchSpec:
    """One row of the table: how batches are made and how the step runs."""

    name: str
    strategy: str  # a data/batching strategy, or "ideal"
    precision: str = "fp32"  # "fp32" | "bf16" | "fp16"
    order: str = "random"  # "random" | "grouped" (transformers' length-grouped sampler) | "bucketed" (ours)
    num_workers: int = 0
    pin_memory: bool = False
    note: str = ""


@dataclass
class BenchResult:
    name: str
    strategy: str
    precision: str
    steps: int
    samples: int
    seconds: float
    samples_per_s: float
    real_tokens_per_s: float
    padded_tokens_per_s: float
    padding_efficiency: float
    data_wait_share: float
    peak_memory_mb: float
    memory_kind: str
    final_loss: float
    mean_loss: float
    note: str = ""
    # 1-minute load average when the row started: on a shared CPU, rows measured under different
    # load are not comparable, and this says whether they were.
    load_avg: float = math.nan
    # Process CPU seconds of the timed loop (CPU only; NaN on CUDA, where the host mostly waits).
    # With one torch thread this is the compute the row needed, unaffected by other jobs' time
    # slices (not by their cache and memory-bandwidth use), so samples per CPU-second compares
    # rows more fairly than wall time on a shared CPU.
    cpu_seconds: float = math.nan
    losses: list[float] = field(default_factory=list, repr=False)

    @property
    def samples_per_cpu_s(self) -> float:
        return self.samples / self.cpu_seconds if self.cpu_seconds > 0 else math.nan

    @property
    def real_tokens_per_cpu_s(self) -> float:
        return self.real_tokens_per_s * self.seconds / self.cpu_seconds if self.cpu_seconds > 0 else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "samples_per_cpu_s": self.samples_per_cpu_s,
            "real_tokens_per_cpu_s": self.real_tokens_per_cpu_s,
        }


def grouped_cycle_steps(num_rows: int, batch_size: int) -> int:
    """Steps in one length-group cycle (one mega-batch of transformers' LengthGroupedSampler)."""
    mult = min(num_rows // (batch_size * 4), 50)
    return max(mult, 1)


def batch_order(spec: BenchSpec, lengths: Sequence[int], batch_size: int, seed: int) -> list[int]:
    """Sample order: the Trainer's length-grouped sampler for "grouped", ours for "bucketed",
    a seeded shuffle otherwise."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    if spec.order == "bucketed":
        from tunelab.data.batching import BucketedSampler

        return list(BucketedSampler(lengths, batch_size, generator=gen))
    if spec.order == "grouped":
        from transformers.trainer_pt_utils import get_length_grouped_indices

        return list(get_length_grouped_indices(list(lengths), batch_size, generator=gen))
    return torch.randperm(len(lengths), generator=gen).tolist()


def endless_batches(rows: Any, order: list[int], batch_size: int, collate: Callable, spec: BenchSpec) -> Iterator[dict]:
    """Endless batches through a torch DataLoader (the loader is part of what is measured)."""
    from torch.utils.data import DataLoader

    while True:
        yield from DataLoader(
            rows,
            batch_size=batch_size,
            sampler=order,
            collate_fn=collate,
            drop_last=True,
            num_workers=spec.num_workers,
            pin_memory=spec.pin_memory,
        )


class _PeakMemory:
    """Peak memory during a block: CUDA max allocated, or the process RSS sampled every 5 ms on CPU."""

    def __init__(self, device: str):
        self.device = device
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self) -> _PeakMemory:
        import torch

        if self.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        else:
            import psutil

            proc = psutil.Process()
            self.peak = proc.memory_info().rss

            def poll() -> None:
                while not self._stop.wait(0.005):
                    self.peak = max(self.peak, proc.memory_info().rss)

            self._thread = threading.Thread(target=poll, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        import torch

        if self.device == "cuda":
            self.peak = torch.cuda.max_memory_allocated()
        else:
            self._stop.set()
            self._thread.join()

    @property
    def kind(self) -> str:
        return "cuda max allocated" if self.device == "cuda" else "process RSS peak"


def _autocast(precision: str, device: str) -> contextlib.AbstractContextManager:
    import torch

    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device, dtype=dtype)


def _to_device(batch: dict[str, Any], device: str) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if hasattr(v, "to") else v for k, v in batch.items()}


def _count(batch: dict[str, Any]) -> tuple[int, int, int]:
    """(samples, real tokens, computed tokens) of a collated batch."""
    from tunelab.data.batching import padding_stats

    real, computed = padding_stats(batch)
    labels = batch.get("labels")
    pos = batch.get("position_ids")
    if pos is not None and batch.get("attention_mask") is None and pos.shape[0] == 1:
        samples = int((pos == 0).sum())  # packed: one sample per position restart
    else:
        samples = int(batch["input_ids"].shape[0]) if labels is None or labels.dim() != 1 else int(labels.shape[0])
    return samples, real, computed


def make_optimizer(model: Any, lr: float) -> Any:
    """AdamW, fused where torch has the kernel: HF Trainer's default optimizer on torch >= 2.8.

    The per-parameter loop of the unfused AdamW costs ~1 s a step on this CPU for a model whose
    42M parameters are mostly embedding, a constant that would hide the batching differences
    the table is about; every row uses the same optimizer either way.
    """
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    try:
        return torch.optim.AdamW(params, lr=lr, fused=True)
    except (RuntimeError, ValueError):  # a device or dtype without the fused kernel
        return torch.optim.AdamW(params, lr=lr)


def run_steps(
    model: Any,
    batches: Iterator[dict[str, Any]],
    steps: int,
    spec: BenchSpec,
    device: str,
    lr: float = 1e-4,
    warmup: Iterator[dict[str, Any]] | None = None,
    on_step: Callable[[int], None] | None = None,
    warmup_steps: int = WARMUP_STEPS,
) -> BenchResult:
    """Warm up on `warmup` batches (untimed), then time exactly `steps` optimizer steps."""
    import torch

    model.to(device).train()
    opt = make_optimizer(model, lr)
    scaler = torch.amp.GradScaler(device) if spec.precision == "fp16" else None
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def step(batch: dict[str, Any]) -> float:
        with _autocast(spec.precision, device):
            loss = model(**batch).loss
        (scaler.scale(loss) if scaler else loss).backward()
        if scaler:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        opt.zero_grad(set_to_none=True)
        return float(loss.detach())

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    for _ in range(warmup_steps if warmup is not None else 0):
        step(_to_device(next(warmup), device))
    sync()
    samples = real = computed = 0
    wait = 0.0
    losses: list[float] = []
    with _PeakMemory(device) as mem:
        start, cpu_start = time.perf_counter(), time.process_time()
        for i in range(steps):
            t0 = time.perf_counter()
            batch = _to_device(next(batches), device)
            wait += time.perf_counter() - t0
            n, r, c = _count(batch)
            samples, real, computed = samples + n, real + r, computed + c
            losses.append(step(batch))
            sync()
            if on_step:
                on_step(i)
        seconds = time.perf_counter() - start
        cpu_seconds = time.process_time() - cpu_start if device != "cuda" else math.nan
    tail = losses[-max(1, len(losses) // 10) :]
    return BenchResult(
        name=spec.name,
        strategy=spec.strategy,
        precision=spec.precision,
        steps=steps,
        samples=samples,
        seconds=seconds,
        samples_per_s=samples / seconds,
        real_tokens_per_s=real / seconds,
        padded_tokens_per_s=computed / seconds,
        padding_efficiency=real / max(computed, 1),
        data_wait_share=wait / seconds,
        peak_memory_mb=mem.peak / 2**20,
        memory_kind=mem.kind,
        final_loss=sum(tail) / len(tail),
        mean_loss=sum(losses) / len(losses) if losses else math.nan,
        note=spec.note,
        load_avg=load,
        cpu_seconds=cpu_seconds,
        losses=losses,
    )


def ideal_batches(rows: Any, order: list[int], batch_size: int, steps: int, task_kind: str) -> list[dict[str, Any]]:
    """Uniform-length batches with the same real tokens as `steps` batches of `order`, built up front.

    Every sample is cut or tiled to the mean length of the samples it stands for, so there is no
    padding and no loading during the timed loop: the ceiling for this model on this machine.
    """
    import torch

    picked = [order[i % len(order)] for i in range(steps * batch_size)]
    seqs = [list(rows[j]["input_ids"]) for j in picked]
    width = max(1, round(sum(len(s) for s in seqs) / len(seqs)))
    out = []
    for b in range(steps):
        chunk = seqs[b * batch_size : (b + 1) * batch_size]
        ids = torch.tensor([(s * (width // len(s) + 1))[:width] for s in chunk])
        if task_kind == "classification":
            labels = torch.tensor([rows[j]["labels"] for j in picked[b * batch_size : (b + 1) * batch_size]])
        else:
            labels = ids.clone()
        out.append({"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels})
    return out


def user_lengths(n: int, seed: int = 0) -> list[int]:
    """Our users' token counts: mean ~211, max 287 (the `users` profile of benchmarks/common.py)."""
    import random

    rng = random.Random(seed)
    return [max(40, min(287, round(rng.gauss(211, 38)))) for _ in range(n)]


def pad_tokenizer() -> Any:
    """A tokenizer that only pads: synthetic rows are token ids already."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({"<pad>": 0, "<unk>": 1, "</s>": 2}, unk_token="<unk>"))
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", eos_token="</s>")
