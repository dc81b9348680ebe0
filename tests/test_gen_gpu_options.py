"""GPU-only options through the CLI on a machine without CUDA: QLoRA (4-bit NF4), 8-bit loading and
bitsandbytes 8-bit/paged optimizers stop `tunelab train` with one error line + a hint (exit 2,
nothing written), and `tunelab doctor` reports them as error findings. Gradient checkpointing is
not GPU-only: it trades compute for memory on CPU as well, so it must train there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gen_support import dialogue_frame
from tiny import tiny_model_dir
from tunelab.cli import app

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour without CUDA")

QLORA = {"model.lora.enabled": True, "model.quantization.load_in_4bit": True}
CASES = [
    ("summarization", QLORA, "model.quantization (4-bit/8-bit) needs a CUDA GPU", "precision.quantization_device"),
    (
        "summarization",
        {**QLORA, "model.quantization.load_in_4bit": False, "model.quantization.load_in_8bit": True},
        "model.quantization (4-bit/8-bit) needs a CUDA GPU",
        "precision.quantization_device",
    ),
    (
        "summarization",
        {"training.optim": "paged_adamw_8bit"},
        "training.optim=paged_adamw_8bit is a bitsandbytes",
        "precision.optimizer_device",
    ),
    (
        "classification",
        {"training.optim": "adamw_bnb_8bit"},
        "training.optim=adamw_bnb_8bit is a bitsandbytes",
        "precision.optimizer_device",
    ),
]


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gpu_options")
    frame = dialogue_frame(16)
    frame.to_csv(root / "dialogue.csv", index=False)
    frame.assign(label=[i % 2 for i in range(16)]).rename(columns={"dialogue": "text"})[["id", "text", "label"]].to_csv(
        root / "cls.csv", index=False
    )
    return {
        "root": root,
        "causal": tiny_model_dir(root / "models", "llama", head="causal"),
        "bert": tiny_model_dir(root / "models", "bert", head="base"),
    }


def write_config(setup: dict[str, Path], task: str, name: str) -> Path:
    root = setup["root"]
    generative = task == "summarization"
    cfg = {
        "name": name,
        "output_dir": str(root / name / "runs"),
        "task": {"type": task},
        "data": {
            "train_file": str(root / ("dialogue.csv" if generative else "cls.csv")),
            "max_length": 64,
            "validation_split": 0.25,
            "cache_dir": str(root / "cache"),
        },
        "model": {"name_or_path": str(setup["causal" if generative else "bert"])},
        "training": {
            "max_steps": 2,
            "per_device_train_batch_size": 4,
            "logging_steps": 1,
            "warmup_steps": 0,
            "eval_strategy": "no",
            "save_strategy": "no",
        },
        "inference": {"generation": {"max_new_tokens": 4}},
        "tracking": "none",
    }
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def sets(overrides: dict) -> list[str]:
    out = []
    for key, value in overrides.items():
        out += ["--set", f"{key}={json.dumps(value)}"]
    return out


@pytest.mark.parametrize(
    "task,overrides,message,finding", CASES, ids=["qlora-4bit", "8bit-load", "paged-8bit", "bnb-8bit-cls"]
)
def test_gpu_only_option_fails_with_one_line_and_a_hint(setup, task, overrides, message, finding):
    name = f"{task}-{'-'.join(str(v) for v in overrides.values())}".replace(".", "")[:40]
    config = write_config(setup, task, name)
    result = CliRunner().invoke(app, ["train", str(config), *sets(overrides)])
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert any(ln.startswith("hint:") for ln in lines), result.stderr
    assert "Traceback" not in result.output
    assert not (setup["root"] / name / "runs").exists()  # refused before a run directory was made

    result = CliRunner().invoke(app, ["doctor", str(config), "--json", *sets(overrides)])
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert finding in {f["id"] for f in report["findings"] if f["severity"] == "error"}


@pytest.mark.slow
def test_gradient_checkpointing_trains_on_cpu(setup):
    config = write_config(setup, "summarization", "ckpt")
    result = CliRunner().invoke(
        app,
        [
            "train",
            str(config),
            "--skip-doctor",
            "--set",
            "model.lora.enabled=true",
            "--set",
            "training.gradient_checkpointing=true",
        ],
    )
    assert result.exit_code == 0, result.output
    (run,) = (setup["root"] / "ckpt" / "runs").iterdir()
    assert json.loads((run / "runtime_plan.json").read_text())["gradient_checkpointing"] is True
    assert (run / "model" / "adapter_config.json").is_file()
