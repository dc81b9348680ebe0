"""Tokenizer pad policy, family registry, model loading policy (dtype, safetensors, errors)."""

from __future__ import annotations

import math

import pytest

from tiny import make_tokenizer, tiny_model_dir
from tunelab.config import validate_config
from tunelab.errors import ModelError
from tunelab.models.families import FAMILIES, family_of
from tunelab.models.tokenizer import ADDED_PAD_TOKEN, apply_pad_policy


def _cfg(path, **model):
    return validate_config(
        {
            "task": {"type": "classification"},
            "data": {"train_file": "unused.csv"},
            "model": {"name_or_path": str(path), **model},
        }
    )


# ------------------------------------------------------------------------------------ pad policy
def test_auto_pad_adds_dedicated_token_not_eos():
    tok = make_tokenizer(pad=False)
    before = len(tok)
    assert apply_pad_policy(tok, "auto") == "added"
    assert tok.pad_token == ADDED_PAD_TOKEN
    assert tok.pad_token_id != tok.eos_token_id
    assert len(tok) == before + 1


def test_eos_pad_only_when_configured():
    tok = make_tokenizer(pad=False)
    assert apply_pad_policy(tok, "eos") == "eos"
    assert tok.pad_token_id == tok.eos_token_id


def test_existing_pad_is_kept():
    tok = make_tokenizer(pad=True)
    assert apply_pad_policy(tok, "auto") == "kept"
    assert tok.pad_token == "<pad>"


def test_load_tokenizer_applies_config(tmp_path):
    from tunelab.models.tokenizer import load_tokenizer

    path = tiny_model_dir(tmp_path, "qwen3", head="causal", pad=False)
    cfg = validate_config(
        {
            "task": {"type": "classification"},
            "model": {"name_or_path": str(path)},
            "data": {"train_file": "x.csv", "truncation_side": "left"},
        }
    )
    tok = load_tokenizer(cfg)
    assert tok.pad_token == ADDED_PAD_TOKEN and tok.pad_token_id != tok.eos_token_id
    assert tok.truncation_side == "left" and tok.padding_side == "right"
    cfg_eos = _cfg(path, pad_token="eos")
    assert load_tokenizer(cfg_eos).pad_token_id == tok.eos_token_id


# -------------------------------------------------------------------------------------- families
def test_families_keyed_on_model_type_not_name():
    from transformers import AutoConfig

    qwen = AutoConfig.for_model("qwen3")
    assert family_of(qwen).is_decoder_only and family_of(qwen).pools_by_pad_id
    assert family_of("bert").is_encoder_only and not family_of("bert").pools_by_pad_id
    assert family_of("bart").is_encoder_decoder
    # every registered entry is a real transformers model type
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    assert set(FAMILIES) <= set(CONFIG_MAPPING_NAMES)


def test_unknown_family_is_inferred_from_auto_tables():
    fam = family_of("olmo")  # not registered: a decoder-only LM in transformers' tables
    assert not fam.known and fam.is_decoder_only and fam.pools_by_pad_id
    enc = family_of("albert")  # has a masked-LM head: an encoder
    assert not enc.known and enc.is_encoder_only


# ------------------------------------------------------------------------------------ loading
def test_load_model_resizes_and_sets_pad(tmp_path):
    from transformers import AutoModelForSequenceClassification

    from tunelab.models.loading import load_model
    from tunelab.models.tokenizer import load_tokenizer
    from tunelab.runtime.plan import decide_plan

    path = tiny_model_dir(tmp_path, "qwen3", head="causal", pad=False)
    cfg = _cfg(path)
    tok = load_tokenizer(cfg)
    model = load_model(cfg, decide_plan(cfg), tok, AutoModelForSequenceClassification, num_labels=3)
    assert model.get_input_embeddings().num_embeddings == len(tok)
    assert model.config.pad_token_id == tok.pad_token_id != tok.eos_token_id
    assert str(model.dtype) == "torch.float32"


def test_missing_local_dir_is_model_error(tmp_path):
    from transformers import AutoModelForSequenceClassification

    from tunelab.models.loading import load_model
    from tunelab.runtime.plan import decide_plan

    cfg = _cfg(tmp_path / "nope" / "model")
    with pytest.raises(ModelError, match="no local directory") as exc:
        load_model(cfg, decide_plan(cfg), make_tokenizer(), AutoModelForSequenceClassification)
    assert "check the path" in exc.value.hint


def test_unreachable_hub_id_is_model_error_with_offline_hint():
    from tunelab.models.tokenizer import load_tokenizer

    with pytest.raises(ModelError, match="not in the Hugging Face cache") as exc:
        load_tokenizer(_cfg("someorg/some-model-that-is-not-cached"))
    assert "HF_HUB_OFFLINE=1" in exc.value.message and "local model directory" in exc.value.hint


def test_pickle_weights_refused_unless_allowed(tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification

    from tunelab.models.loading import load_model
    from tunelab.models.tokenizer import load_tokenizer
    from tunelab.runtime.plan import decide_plan

    path = tiny_model_dir(tmp_path, "bert", head="classification", num_labels=2)
    model = AutoModelForSequenceClassification.from_pretrained(path)
    torch.save(model.state_dict(), path / "pytorch_model.bin")
    (path / "model.safetensors").unlink()
    cfg = _cfg(path)
    tok = load_tokenizer(cfg)
    with pytest.raises(ModelError, match="pickle") as exc:
        load_model(cfg, decide_plan(cfg), tok, AutoModelForSequenceClassification)
    assert "allow_pickle" in exc.value.hint
    allowed = _cfg(path, allow_pickle=True)
    loaded = load_model(allowed, decide_plan(allowed), tok, AutoModelForSequenceClassification)
    assert torch.equal(loaded.classifier.weight, model.classifier.weight)


def test_decoder_280_labels_initial_loss_near_uniform(tmp_path):
    """A tiny Qwen3 classifier (pad added, mask pooling) starts at ~ln(280)."""
    import torch

    from tunelab.models.tokenizer import load_tokenizer
    from tunelab.runtime.plan import decide_plan
    from tunelab.tasks.classification import ClassificationTaskImpl

    path = tiny_model_dir(tmp_path, "qwen3", head="causal", pad=False)
    labels = [f"c{i}" for i in range(280)]
    cfg = _cfg(path)
    tok = load_tokenizer(cfg)
    assert tok.pad_token_id != tok.eos_token_id
    model = ClassificationTaskImpl(cfg, labels).build_model(cfg, decide_plan(cfg), tok)
    texts = ["please reset my password", "where is my parcel? it has not arrived yet", "hi"] * 6
    batch = tok(texts, padding=True, return_tensors="pt")
    targets = torch.arange(len(texts)) * 13 % 280
    model.eval()
    with torch.no_grad():
        loss = model(**batch, labels=targets).loss.item()
    assert abs(loss - math.log(280)) / math.log(280) < 0.05, loss


def test_head_init_std_reinitialises_logits_layer(tmp_path):
    from tunelab.models.tokenizer import load_tokenizer
    from tunelab.runtime.plan import decide_plan
    from tunelab.tasks.classification import ClassificationTaskImpl, classification_head

    path = tiny_model_dir(tmp_path, "bert", head="base")
    cfg = _cfg(path, head_init_std=1e-4)
    tok = load_tokenizer(cfg)
    model = ClassificationTaskImpl(cfg, ["a", "b", "c"]).build_model(cfg, decide_plan(cfg), tok)
    head = classification_head(model)
    assert head.weight.std().item() < 5e-4
    assert float(head.bias.abs().max()) == 0.0


def test_a_fresh_head_is_initialised_the_same_in_every_run(tmp_path):
    """Regression: the model was built before the Trainer seeded anything, so two runs of one
    config started from different classification heads (different loss curves, same seed)."""
    import torch

    from tunelab.models.tokenizer import load_tokenizer
    from tunelab.runtime.plan import Capabilities, decide_plan
    from tunelab.tasks.base import build_seeded_model, task_from_config

    path = tiny_model_dir(tmp_path, "bert", head="base")
    cfg = _cfg(path)
    plan = decide_plan(
        cfg,
        Capabilities(
            device="cpu",
            device_name="cpu",
            cuda_capability=None,
            bf16_supported=False,
            device_memory_bytes=None,
            cpu_count=2,
        ),
    )
    task = task_from_config(cfg, ["a", "b", "c"])
    heads = []
    for _ in range(2):
        torch.manual_seed(len(heads))  # whatever the global RNG state was before
        model = build_seeded_model(task, cfg, plan, load_tokenizer(cfg))
        heads.append(model.classifier.weight.detach().clone())
    assert torch.equal(heads[0], heads[1])


def test_a_missing_local_model_dir_is_named_as_such():
    """Regression: a typo in a local path was reported as "Repo id must be in the form ..."."""
    from tunelab.models.tokenizer import load_tokenizer

    with pytest.raises(ModelError, match="no local directory"):
        load_tokenizer(_cfg("examples/models/does-not-exist"))
    with pytest.raises(ModelError, match="no local directory"):
        load_tokenizer(_cfg("./does-not-exist"))


def _no_loader(monkeypatch):
    import transformers

    def never(*_a, **_k):  # the loader is what retried for a minute
        raise AssertionError("from_pretrained reached")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", never)


def test_a_two_part_path_that_does_not_exist_fails_at_once_offline(monkeypatch, tmp_path):
    """`models/my-bert` reads like a Hub id: offline it retried for ~1 minute and never said
    "no such local directory"."""
    import time

    from tunelab.models.tokenizer import load_tokenizer

    monkeypatch.chdir(tmp_path)
    _no_loader(monkeypatch)
    start = time.perf_counter()
    with pytest.raises(ModelError) as exc:
        load_tokenizer(_cfg("models/my-bert"))
    assert time.perf_counter() - start < 2
    assert f"no local directory {str(tmp_path / 'models' / 'my-bert')!r}" in exc.value.message
    assert "not in the Hugging Face cache" in exc.value.message and "HF_HUB_OFFLINE=1" in exc.value.message


def test_an_unreachable_hub_is_found_with_one_short_request(monkeypatch):
    import httpx
    import huggingface_hub

    from tunelab.models import source
    from tunelab.models.tokenizer import load_tokenizer

    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(var, "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    calls = []

    def no_network(self, repo_id, **kwargs):
        calls.append(kwargs.get("timeout"))
        raise httpx.ConnectError("[Errno -2] Name or service not known")

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", no_network)
    source._check_hub_id.cache_clear()
    _no_loader(monkeypatch)
    with pytest.raises(ModelError, match="Hugging Face Hub is unreachable") as exc:
        load_tokenizer(_cfg("sentence-transformers/not-cached-here"))
    assert calls == [source.PROBE_TIMEOUT_S]
    assert "no local directory" in exc.value.message and "Name or service not known" in exc.value.message
    assert "HF_HUB_OFFLINE=1" in exc.value.hint and "local model directory" in exc.value.hint
    source._check_hub_id.cache_clear()
