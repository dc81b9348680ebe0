"""A tiny HF Trainer run with tunelab's atomic checkpoints, used as a subprocess by test_rel_resume.

Independent of the orchestrator so the checkpoint/resume protocol is proven on the Trainer alone:
`python rel_trainer_script.py MODEL_DIR OUT_DIR [--resume] [--sampler group_by_length|random]`.
Writes OUT_DIR/final.safetensors (the trained weights) and OUT_DIR/result.json (metrics). Faults
are injected through TUNELAB_FAULT (see tunelab.safety.faults).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def build_dataset(tokenizer):
    from datasets import Dataset

    words = [
        "the",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "the",
        "lazy",
        "dog",
        "please",
        "reset",
        "my",
        "password",
        "안녕하세요",
        "배송",
        "확인",
    ]
    rows = []
    for i in range(48):  # varied lengths so group_by_length really reorders
        n = 2 + (i * 7) % 17
        rows.append({"text": " ".join(words[(i + j) % len(words)] for j in range(n)), "label": i % 3})
    ds = Dataset.from_list(rows)
    return ds.map(lambda b: tokenizer(b["text"], truncation=True, max_length=64), batched=True, remove_columns=["text"])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--sampler", default="group_by_length")
    ap.add_argument("--save-total-limit", type=int, default=2)
    a = ap.parse_args()

    import torch
    from safetensors.torch import save_file
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    from tunelab.training.checkpointing import (
        InterruptCallback,
        atomic_trainer_class,
        clean_staging,
        find_resumable_checkpoint,
        raise_if_interrupted,
    )

    out = Path(a.out_dir)
    tok = AutoTokenizer.from_pretrained(a.model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(a.model_dir, num_labels=3, hidden_dropout_prob=0.1)
    args = TrainingArguments(
        output_dir=str(out / "checkpoints"),
        per_device_train_batch_size=4,
        num_train_epochs=2,
        learning_rate=1e-3,
        save_strategy="steps",
        save_steps=4,
        save_total_limit=a.save_total_limit,
        logging_steps=1,
        use_cpu=True,
        seed=7,
        train_sampling_strategy=a.sampler,
        report_to=[],
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    cb = InterruptCallback()
    cls = atomic_trainer_class(Trainer)
    trainer = cls(
        model=model,
        args=args,
        train_dataset=build_dataset(tok),
        processing_class=tok,
        data_collator=DataCollatorWithPadding(tok),
        callbacks=[cb],
    )
    ckpt = None
    if a.resume:
        clean_staging(out)
        ckpt = find_resumable_checkpoint(out)
    result = trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
    try:
        raise_if_interrupted(cb, out)
    except Exception as exc:  # TrainingInterrupted: report like the CLI does
        print(f"error: {exc.message}\nhint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    save_file({k: v.contiguous() for k, v in trainer.model.state_dict().items()}, str(out / "final.safetensors"))
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    (out / "result.json").write_text(
        json.dumps(
            {
                "train_loss": result.training_loss,
                "global_step": result.global_step,
                "losses": losses,
                "resumed_from": str(ckpt) if ckpt else None,
            }
        )
    )
    del torch
    return 0


if __name__ == "__main__":
    sys.exit(main())
