"""The bench half of `scripts/gpu-check.sh`: a Qwen3-4B-shaped classifier, measured once per slot.

A random-init model built from a config dict (no download) with Qwen3-4B's shapes (hidden 2560,
36 layers, 32 query / 8 KV heads of 128, MLP 9728, vocabulary 151,936) and a 280-class head,
trained on synthetic rows with our users' length profile (mean ~211, max 287, max_length 320):
full fine-tune (fp32 master weights, the plan's autocast) and LoRA (frozen base in the plan's
weight dtype), each for `naive`, `grouped`, `packed` and `auto`, plus the same model through a
plain HF Trainer set up by hand. Reports samples/s, real tokens/s, MFU (bench/flops.py) and peak
memory per row, and how long each part took.

Reuses the bench harness (specs from `build_specs`, the step loop `run_steps`, batch order and
loaders from bench/measure.py); the only new parts are building a large model without copying
it (the harness deep-copies one model per row, which a 4B model cannot afford) and the HF
Trainer row. `--dry-run` runs the same code with tiny shapes on CPU, so CI keeps it working.
"""

from __future__ import annotations

import argparse
import gc
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from tunelab.bench.measure import pad_tokenizer, user_lengths

NUM_LABELS = 280
QWEN3_4B = {
    "hidden_size": 2560,
    "num_hidden_layers": 36,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "intermediate_size": 9728,
    "vocab_size": 151936,
}
TINY = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "intermediate_size": 128,
    "vocab_size": 2048,
}
STRATEGIES = ("grouped", "packed", "auto")
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class CheckSettings:
    dry_run: bool
    device: str
    rows: int
    batch: int
    steps: int
    warmup: int
    max_length: int = 320
    seed: int = 0

    @classmethod
    def make(cls, dry_run: bool, device: str | None = None) -> CheckSettings:
        import torch

        dev = device or ("cpu" if dry_run or not torch.cuda.is_available() else "cuda")
        if dry_run:
            return cls(True, dev, rows=32, batch=4, steps=2, warmup=1)
        # 256 rows at batch 8: one length-group cycle is 8 steps (bench/measure.grouped_cycle_steps).
        return cls(False, dev, rows=256, batch=8, steps=8, warmup=3)


def model_config(dry_run: bool) -> Any:
    from transformers import AutoConfig

    shape = TINY if dry_run else QWEN3_4B
    return AutoConfig.for_model(
        "qwen3",
        num_labels=NUM_LABELS,
        pad_token_id=0,
        eos_token_id=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        **shape,
    )


def synthetic_rows(config: Any, s: CheckSettings) -> list[dict[str, Any]]:
    rng = random.Random(s.seed)
    rows = []
    for length in user_lengths(s.rows, s.seed):
        ids = [rng.randrange(3, config.vocab_size) for _ in range(length)]
        rows.append({"input_ids": ids, "attention_mask": [1] * length, "labels": ids[0] % NUM_LABELS, "length": length})
    return rows


def plan_for(config: Any, lora: bool, device: str) -> Any:
    """The runtime plan tunelab itself decides for this model on this machine."""
    from tunelab.config.schema import Config
    from tunelab.runtime.plan import decide_plan

    cfg = Config(
        task={"type": "classification"},
        data={"train_file": "synthetic", "max_length": 320},
        model={"name_or_path": "synthetic", "lora": {"enabled": lora}},
        runtime={"device": device},
    )
    return cfg, decide_plan(cfg, model_config=config)


def build_model(config: Any, weight_dtype: str, attn: str, lora: bool, device: str, seed: int) -> Any:
    """Seeded random init directly on the device (the same weights every call, no CPU copy)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from tunelab.models.pooling import enable_mask_pooling

    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForSequenceClassification.from_config(
            config, dtype=getattr(torch, weight_dtype), attn_implementation=attn
        )
    model = enable_mask_pooling(model)
    if lora:
        from peft import LoraConfig, get_peft_model

        lcfg = LoraConfig(task_type="SEQ_CLS", r=16, lora_alpha=32, target_modules=LORA_TARGETS)
        model = get_peft_model(model, lcfg)
    return model


def lora_params(model: Any) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if p.requires_grad and "lora_" in n)


def _free(device: str) -> None:
    import torch

    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


def _row(name: str, mode: str, precision: str, attn: str, measured: dict[str, Any], s: CheckSettings) -> dict[str, Any]:
    return {
        "mode": mode,
        "configuration": name,
        "precision": precision,
        "attention": attn,
        "device": s.device,
        "batch": s.batch,
        "steps": s.steps,
        **measured,
    }


# ----------------------------------------------------------------------------------- measuring
def measure_spec(spec: Any, config: Any, plan: Any, rows: list[dict], lora: bool, s: CheckSettings) -> dict[str, Any]:
    """One harness row: a fresh seeded model, the spec's batches, `run_steps` after warm-up."""
    from tunelab.bench.measure import batch_order, endless_batches, run_steps
    from tunelab.data.batching import make_collator

    naive = spec.precision == "fp32" and plan.precision != "fp32"
    # flash-attn has no fp32 kernel: the fp32 `naive` row runs SDPA, as a plain setup would.
    attn = "sdpa" if spec.precision == "fp32" else plan.attn_implementation
    weight = "float32" if naive or not lora else plan.weight_dtype
    model = build_model(config, weight, attn, lora, s.device, s.seed)
    tok = pad_tokenizer()
    order = batch_order(spec, [r["length"] for r in rows], s.batch, s.seed)
    collate = make_collator(
        spec.strategy, tok, "classification", s.max_length, varlen_attention=attn == "flash_attention_2"
    )
    result = run_steps(
        model,
        endless_batches(rows, order, s.batch, collate, spec),
        s.steps,
        spec,
        s.device,
        lr=1e-5,
        warmup=endless_batches(rows, order, s.batch, collate, spec),
        warmup_steps=s.warmup,
    )
    adapters = lora_params(model) if lora else 0
    del model
    _free(s.device)
    return {
        "samples_per_s": result.samples_per_s,
        "tokens_per_s": result.real_tokens_per_s,
        "padding_efficiency": result.padding_efficiency,
        "peak_memory_mb": result.peak_memory_mb,
        "final_loss": result.final_loss,
        "attention_used": attn,
        "lora_params": adapters,
        "precision_used": spec.precision,
    }


def measure_hf_trainer(config: Any, plan: Any, rows: list[dict], lora: bool, s: CheckSettings) -> dict[str, Any]:
    """The same model through a plain `transformers.Trainer`, set up as a user would by hand:
    dynamic padding, random order, default SDPA, bf16/fp16 flag from the device."""
    import tempfile

    from datasets import Dataset
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    weight = plan.weight_dtype if lora else "float32"
    model = build_model(config, weight, "sdpa", lora, s.device, s.seed)
    ds = Dataset.from_list([{k: r[k] for k in ("input_ids", "attention_mask", "labels")} for r in rows])
    timer = _StepTimer(s.warmup, s.warmup + s.steps, s.device)
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(
            output_dir=tmp,
            per_device_train_batch_size=s.batch,
            max_steps=s.warmup + s.steps,
            learning_rate=1e-5,
            bf16=plan.precision == "bf16",
            fp16=plan.precision == "fp16",
            use_cpu=s.device == "cpu",
            report_to=[],
            save_strategy="no",
            eval_strategy="no",
            logging_strategy="no",
            disable_tqdm=True,
            seed=s.seed,
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=ds,
            data_collator=DataCollatorWithPadding(pad_tokenizer()),
            callbacks=[timer],
        )
        out = trainer.train()
    mean_len = sum(r["length"] for r in rows) / len(rows)
    samples_per_s = s.steps * s.batch / timer.seconds
    del model
    _free(s.device)
    return {
        "samples_per_s": samples_per_s,
        # Random order over the whole set: tokens/s = samples/s x mean length (estimated).
        "tokens_per_s": samples_per_s * mean_len,
        "padding_efficiency": float("nan"),
        "peak_memory_mb": timer.peak_bytes / 2**20,
        "final_loss": float(out.training_loss),
        "attention_used": "sdpa",
        "lora_params": 0,
        "precision_used": plan.precision,
    }


class _StepTimer(TrainerCallback):
    """Times optimizer steps [start, stop) of a Trainer and the peak memory in between."""

    def __init__(self, start: int, stop: int, device: str):
        self.start, self.stop, self.device = start, stop, device
        self.seconds = float("nan")
        self.peak_bytes = 0
        self._t0 = 0.0

    def _sync(self) -> None:
        import torch

        if self.device == "cuda":
            torch.cuda.synchronize()

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self.start:
            import torch

            self._sync()
            if self.device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            self._t0 = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self.stop:
            self._sync()
            self.seconds = time.perf_counter() - self._t0
            self.peak_bytes = _peak_bytes(self.device)


def _peak_bytes(device: str) -> int:
    import torch

    if device == "cuda":
        return int(torch.cuda.max_memory_allocated())
    from tunelab.runtime.memory import peak_rss_bytes

    return peak_rss_bytes()


# ------------------------------------------------------------------------------ MFU and the run
def add_mfu(row: dict[str, Any], config: Any, rows: list[dict], peak: float) -> None:
    """MFU of a row: real tokens/s x model FLOPs per token (bench/flops.py) / peak FLOP/s."""
    from tunelab.bench.flops import training_flops

    lengths = [r["length"] for r in rows]
    per_token = training_flops(config, lengths, lora_params=row["lora_params"]) / sum(lengths)
    row["flops_per_token"] = per_token
    row["tflops"] = row["tokens_per_s"] * per_token / 1e12
    row["mfu"] = row["tokens_per_s"] * per_token / peak if peak > 0 else float("nan")


def device_peak(device: str, precision: str) -> tuple[float, str]:
    from tunelab.bench.flops import measured_matmul_peak, peak_flops

    if device == "cuda":
        import torch

        peak, source = peak_flops(torch.cuda.get_device_name(0), precision)
        if peak > 0:
            return peak, source
    return measured_matmul_peak(device, precision), f"measured {precision} matmul on this {device}"


def run_mode(lora: bool, config: Any, rows: list[dict], s: CheckSettings, timings: dict[str, float]) -> list[dict]:
    """naive + grouped/packed/auto through the harness, then the plain HF Trainer row."""
    import torch

    from tunelab.bench.harness import build_specs
    from tunelab.data.batching import resolve_strategy

    mode = "lora" if lora else "full"
    cfg, plan = plan_for(config, lora, s.device)
    with torch.device("meta"):  # a shape-only model: enough to decide `auto`, no memory
        from transformers import AutoModelForSequenceClassification

        from tunelab.models.pooling import enable_mask_pooling

        probe = enable_mask_pooling(AutoModelForSequenceClassification.from_config(config))
    auto = resolve_strategy(
        cfg.model_copy(update={"data": cfg.data.model_copy(update={"batching": "auto"})}), plan, probe
    )
    specs = [sp for sp in build_specs(plan, STRATEGIES, auto, packable=True) if sp.name != "ideal"]
    out = []
    for spec in specs:
        t0 = time.perf_counter()
        measured = measure_spec(spec, config, plan, rows, lora, s)
        row = _row(
            spec.name if spec.name != "auto" else f"auto (= {auto[0]})",
            mode,
            spec.precision,
            measured["attention_used"],
            measured,
            s,
        )
        out.append(row)
        timings[f"{mode} {spec.name}"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    measured = measure_hf_trainer(config, plan, rows, lora, s)
    out.append(_row("plain HF Trainer", mode, plan.precision, "sdpa", measured, s))
    timings[f"{mode} HF Trainer"] = time.perf_counter() - t0
    peaks = {p: device_peak(s.device, p) for p in {r["precision_used"] for r in out}}
    for row in out:
        peak, source = peaks[row["precision_used"]]
        add_mfu(row, config, rows, peak)
        row["peak_flops"], row["peak_source"] = peak, source
    return out


def run_gpu_check(out_dir: Path, dry_run: bool = False, device: str | None = None) -> list[dict[str, Any]]:
    """Measure every row, write gpu_check.json and gpu_check.md into `out_dir`, return the rows."""
    from tunelab.bench.gpu_report import device_stamp, section_text
    from tunelab.io import atomic_write_json, atomic_write_text

    s = CheckSettings.make(dry_run, device)
    if s.device == "cuda":
        from tunelab.runtime.plan import apply_global_settings

        apply_global_settings(plan_for(model_config(dry_run), False, "cuda")[1])  # TF32 as tunelab sets it
    config = model_config(dry_run)
    rows = synthetic_rows(config, s)
    timings: dict[str, float] = {}
    results = run_mode(False, config, rows, s, timings) + run_mode(True, config, rows, s, timings)
    stamp = device_stamp(s.device)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / "gpu_check.json", {"stamp": stamp, "timings_s": timings, "rows": results})
    atomic_write_text(out_dir / "gpu_check.md", section_text(results, stamp, timings, s, NUM_LABELS) + "\n")
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="The bench half of scripts/gpu-check.sh")
    ap.add_argument("--dry-run", action="store_true", help="tiny shapes on CPU: the same code path, in seconds")
    ap.add_argument("--out", type=Path, default=Path("runs/gpu-check"))
    ap.add_argument("--docs", type=Path, default=None, help="write the rows into this docs/benchmarks.md")
    args = ap.parse_args(argv)
    from tunelab.bench.gpu_report import write_docs_section

    t0 = time.perf_counter()
    results = run_gpu_check(args.out, dry_run=args.dry_run)
    text = (args.out / "gpu_check.md").read_text(encoding="utf-8")
    print(text, flush=True)
    if args.docs is not None:
        write_docs_section(args.docs, "### GPU check\n\n" + text)
        print(f"wrote {args.docs}", flush=True)
    print(f"bench: {len(results)} rows in {time.perf_counter() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
