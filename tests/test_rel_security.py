"""Guarantee 6 (all but secrets, which are in test_rel_secrets.py): remote code, pickle, YAML.

- `trust_remote_code` is off by default, only taken from the config, and announced loudly when on;
- weights are read from safetensors unless `model.allow_pickle` (tests/test_models_loading.py),
  checkpoints are written as safetensors, and every `torch.load` (ours and the Trainer's on
  resume) passes `weights_only=True`;
- YAML is loaded with the safe loader: a python tag is an error, never executed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tunelab.config.loader import validate_config
from tunelab.safety import remote_code

SRC = Path(__file__).resolve().parents[1] / "src" / "tunelab"


def _cfg(model: str, **model_kw):
    return validate_config(
        {
            "task": {"type": "classification"},
            "data": {"train_file": "t.csv"},
            "model": {"name_or_path": model, **model_kw},
            "tracking": "none",
        }
    )


def test_every_torch_load_in_our_code_is_weights_only():
    calls = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "load"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "torch"
            ):
                kw = {k.arg: k.value for k in node.keywords}
                ok = isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True
                calls.append((f"{path.relative_to(SRC)}:{node.lineno}", ok))
    assert all(ok for _, ok in calls), [where for where, ok in calls if not ok]
    text = "\n".join(p.read_text(encoding="utf-8") for p in SRC.rglob("*.py"))
    assert "pickle.load" not in text and "yaml.load(" not in text and "yaml.unsafe_load" not in text


def test_resume_loads_checkpoint_tensors_weights_only(tmp_path, monkeypatch):
    """The Trainer reads optimizer/scheduler/RNG state with torch.load on resume: all weights_only."""
    import torch

    from test_rel_checkpointing import _trainer

    first = _trainer(tmp_path, max_steps=2, save_steps=2)
    first.train()
    ckpt = tmp_path / "run" / "checkpoints" / "checkpoint-2"
    assert (ckpt / "model.safetensors").is_file() and not list(ckpt.glob("pytorch_model*.bin"))
    seen = []
    real = torch.load

    def spy(*args, **kwargs):
        seen.append((str(args[0]) if args else "?", kwargs.get("weights_only")))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    second = _trainer(tmp_path, max_steps=4, save_steps=2)
    second.train(resume_from_checkpoint=str(ckpt))
    assert any("optimizer.pt" in f for f, _ in seen) and any("rng_state" in f for f, _ in seen)
    assert all(w is True for _, w in seen), seen


def test_trust_remote_code_is_off_by_default_and_loud_when_on(tmp_path, capsys, monkeypatch):
    from tiny import tiny_model_dir
    from tunelab.models.tokenizer import load_tokenizer

    monkeypatch.setattr(remote_code, "_announced", set())
    model = str(tiny_model_dir(tmp_path, "bert", head="classification", num_labels=2))
    assert _cfg(model).model.trust_remote_code is False
    load_tokenizer(_cfg(model))
    assert "trust_remote_code" not in capsys.readouterr().err
    load_tokenizer(_cfg(model, trust_remote_code=True))
    err = " ".join(capsys.readouterr().err.split())
    assert "security warning: model.trust_remote_code is ON" in err and model in err
    load_tokenizer(_cfg(model, trust_remote_code=True))
    assert "security warning" not in capsys.readouterr().err  # once per source, not on every load


def test_trust_remote_code_reaches_from_pretrained_only_from_config(tmp_path, monkeypatch):
    from transformers import AutoModelForSequenceClassification

    from tiny import tiny_model_dir
    from tunelab.models.loading import load_model
    from tunelab.models.tokenizer import load_tokenizer
    from tunelab.runtime.plan import decide_plan

    model = str(tiny_model_dir(tmp_path, "bert", head="classification", num_labels=2))
    seen = {}
    real = AutoModelForSequenceClassification.from_pretrained

    def spy(source, **kwargs):
        seen.update(kwargs)
        return real(source, **kwargs)

    monkeypatch.setattr(AutoModelForSequenceClassification, "from_pretrained", spy)
    cfg = _cfg(model)
    load_model(cfg, decide_plan(cfg), load_tokenizer(cfg), AutoModelForSequenceClassification, num_labels=2)
    assert seen["trust_remote_code"] is False and seen["use_safetensors"] is True


def test_python_yaml_tags_are_refused_not_executed(tmp_path, monkeypatch):
    from tunelab.config.loader import load_config
    from tunelab.errors import ConfigError

    marker = tmp_path / "pwned"
    (tmp_path / "cfg.yaml").write_text(
        "task: {type: classification}\ndata: {train_file: t.csv}\nmodel: {name_or_path: m}\n"
        f"x: !!python/object/apply:os.system ['touch {marker}']\n"
    )
    with pytest.raises(ConfigError, match="could not determine a constructor"):
        load_config(tmp_path / "cfg.yaml")
    assert not marker.exists()
