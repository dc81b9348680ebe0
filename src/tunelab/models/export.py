"""`tunelab export RUN_DIR --output DIR [--merge]`: a run's model as a standalone directory.

A LoRA run's model/ holds only the adapters (+ tokenizer). Without --merge the directory is
copied as is (load it with peft on top of the base). With --merge the adapters are folded into
the base weights (`merge_and_unload`) and a full model is written, loadable with plain
`from_pretrained` and no peft. The merge runs on CPU in the weights' own dtype with
`low_cpu_mem_usage`, so it needs about one copy of the model in RAM and no GPU. Everything is
written into a temp directory that is renamed into place at the end: an interrupted export
never leaves a half directory that looks whole.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from tunelab.errors import RunDirError


def _auto_cls(config: Any) -> Any:
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoModelForSequenceClassification

    if getattr(config, "is_encoder_decoder", False):
        return AutoModelForSeq2SeqLM
    archs = getattr(config, "architectures", None) or []
    if any("ForSequenceClassification" in a for a in archs):  # a class name, not a model name
        return AutoModelForSequenceClassification
    return AutoModelForCausalLM


def merge_adapters(
    model_dir: Path,
    base: str,
    out: Path,
    *,
    trust_remote_code: bool = False,
    revision: str | None = None,
    label_names: list[str] | None = None,
) -> None:
    """Load `base` on CPU, apply the adapters in `model_dir`, merge, save safetensors to `out`.

    A classifier's adapters (peft task type SEQ_CLS) carry its trained head; the base is loaded
    as a sequence classifier with the run's label map so the merged directory is a plain
    `AutoModelForSequenceClassification` (labels and pad id in its config.json).
    """
    from peft import PeftConfig, PeftModel
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from tunelab import ui

    ui.quiet_libraries()  # transformers' load report and shard bars as one line of ours
    peft_cfg = PeftConfig.from_pretrained(str(model_dir))
    config = AutoConfig.from_pretrained(base, revision=revision, trust_remote_code=trust_remote_code)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), trust_remote_code=trust_remote_code)
    dtype = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None) or "float32"
    kwargs = _classifier_kwargs(peft_cfg, label_names)
    auto_cls = AutoModelForSequenceClassification if kwargs else _auto_cls(config)
    from tunelab import ui

    # A classifier's fresh head is replaced by the adapters' trained one: no "newly initialised" line.
    with ui.transformers_errors_only(active=bool(kwargs)):
        model = auto_cls.from_pretrained(
            base,
            revision=revision,
            trust_remote_code=trust_remote_code,
            dtype=dtype,
            low_cpu_mem_usage=True,
            device_map={"": "cpu"},
            **kwargs,
        )
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        # The run added tokens (e.g. a pad token); the adapters saved the resized embeddings.
        model.resize_token_embeddings(len(tokenizer))
    # The stock decoder classifier pools the last token that is not pad_token_id: it must know it.
    model.config.pad_token_id = tokenizer.pad_token_id
    merged = PeftModel.from_pretrained(model, str(model_dir), config=peft_cfg).merge_and_unload()
    merged.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def _classifier_kwargs(peft_cfg: Any, label_names: list[str] | None) -> dict[str, Any]:
    """`from_pretrained` kwargs giving a classifier's base the run's label map ({} otherwise)."""
    if str(getattr(peft_cfg, "task_type", "")) not in ("SEQ_CLS", "TaskType.SEQ_CLS") or not label_names:
        return {}
    return {
        "num_labels": len(label_names),
        "id2label": dict(enumerate(label_names)),
        "label2id": {n: i for i, n in enumerate(label_names)},
        "ignore_mismatched_sizes": True,  # the head comes from the adapters
    }


def default_output(run_dir: Path, merge: bool) -> Path:
    return Path(run_dir) / ("merged" if merge else "export")


def export_run(run_dir: Path, output: Path | None = None, merge: bool = False) -> Path:
    """Write the run's final model to `output` (default: RUN_DIR/merged or RUN_DIR/export)."""
    from tunelab import ui
    from tunelab.io import atomic_dir
    from tunelab.models.lora import is_peft_dir
    from tunelab.runs import final_model_dir, load_run

    run = load_run(run_dir)
    run_dir = run.path  # latest:NAME resolved
    model_dir = final_model_dir(run_dir)
    output = Path(output) if output is not None else default_output(Path(run_dir), merge)
    if output.exists() and not (output.is_dir() and not any(output.iterdir())):
        raise RunDirError(f"{output}: already exists and is not empty", hint="choose a new --output directory")
    console = ui.err()
    with atomic_dir(output) as tmp:
        if merge and is_peft_dir(model_dir):
            cfg = run.config
            console.print(f"merging LoRA adapters of {model_dir} into {cfg.model.name_or_path} (CPU, low memory)")
            merge_adapters(
                model_dir,
                cfg.model.name_or_path,
                Path(tmp),
                trust_remote_code=cfg.model.trust_remote_code,
                revision=cfg.model.revision,
                label_names=run.label_names,
            )
        else:
            if merge:
                console.print(f"{model_dir} holds full weights (no LoRA adapters): nothing to merge, copying")
            shutil.copytree(model_dir, tmp, dirs_exist_ok=True)
    console.print(f"exported {'merged model' if merge else 'model'} to {output}")
    return output
