"""Planted-fault suite: each classic fine-tuning failure, planted in a tiny model/config, must be
reported by doctor under its check id; a healthy setup must report no error."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest

from tiny import CORPUS, make_tokenizer, tiny_config
from tunelab.config.schema import Config
from tunelab.diagnostics.context import CheckContext
from tunelab.diagnostics.findings import Finding, has_errors


@pytest.fixture(autouse=True)
def _one_thread():
    # 2 shared cores: torch's default thread pool thrashes under load; tiny models need one.
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_cfg(task: str = "classification", **sections) -> Config:
    base = {
        "task": {"type": task},
        "data": {"train_file": "train.csv", "max_length": 32},
        "model": {"name_or_path": "unused"},
        "training": {"per_device_train_batch_size": 8, "num_train_epochs": 1},
        "tracking": "none",
    }
    for key, value in sections.items():
        base[key] = {**base.get(key, {}), **value}
    return Config.model_validate(base)


def texts(n: int) -> list[str]:
    return [f"{CORPUS[i % 14]} {' '.join(str(i))} {'!' * (i % 5)}" for i in range(n)]


def cls_dataset(tok, labels: list[int]):
    from datasets import Dataset

    enc = tok(texts(len(labels)), truncation=True, max_length=32)
    return Dataset.from_dict({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels})


def cls_model(tok, num_labels: int, mask_pooling: bool = True):
    import torch
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(tiny_config("qwen3", tok, num_labels=num_labels))
    if mask_pooling:
        from tunelab.models.pooling import enable_mask_pooling

        enable_mask_pooling(model)
    return model


def plan_for(cfg):
    from tunelab.runtime.plan import decide_plan

    return decide_plan(cfg)


def ids(findings: list[Finding], severity: str | None = None) -> set[str]:
    return {f.id for f in findings if severity is None or f.severity == severity}


def by_id(findings: list[Finding], fid: str) -> Finding:
    return next(f for f in findings if f.id == fid)


def fake_cuda(memory_gib: float = 80.0, bf16: bool = True):
    from tunelab.runtime.plan import Capabilities

    return Capabilities(
        device="cuda",
        device_name="Fake GPU",
        cuda_capability=(8, 0),
        bf16_supported=bf16,
        device_memory_bytes=int(memory_gib * 1024**3),
        cpu_count=16,
    )


# --------------------------------------------------------------------------------- healthy
def test_healthy_classifier_reports_no_error_and_memorises_one_batch():
    from tunelab.diagnostics.preflight import run_preflight

    tok = make_tokenizer()
    cfg = make_cfg(doctor={"overfit_lr": 1e-2, "overfit_steps": 40})
    model = cls_model(tok, 4)
    ds = cls_dataset(tok, [i % 4 for i in range(64)])
    findings = run_preflight(cfg, plan_for(cfg), None, model, tok, ds, None, overfit=True)
    assert not has_errors(findings), [f for f in findings if f.severity == "error"]
    assert "doctor.check_failed" not in ids(findings)
    loss = by_id(findings, "loss.initial")
    assert loss.severity == "info" and abs(loss.evidence["loss"] - math.log(4)) < 0.2
    assert by_id(findings, "overfit.one_batch").evidence["last_loss"] < 0.1
    # the checks left the model as they found it: eval mode unchanged, no gradients
    assert all(p.grad is None for p in model.parameters())


# ------------------------------------------------------------------------ (a) head too large
def test_a_oversized_head_gives_seed_shaped_initial_loss_with_cause_named():
    import torch

    from tunelab.diagnostics.preflight import run_preflight

    tok = make_tokenizer()
    cfg = make_cfg()
    model = cls_model(tok, 280)
    with torch.no_grad():
        model.score.weight.normal_(0.0, 4.5)  # the seed's failure: loss ~69 against ln(280) = 5.63
    ds = cls_dataset(tok, [(7 * i) % 280 for i in range(64)])
    findings = run_preflight(cfg, plan_for(cfg), None, model, tok, ds)
    f = by_id(findings, "loss.initial")
    assert f.severity == "error"
    assert f.evidence["ratio"] > 5 and f.evidence["num_classes"] == 280
    assert "head is initialised far too large" in f.title
    assert "model.head_init_std" in f.fix
    assert f.evidence["head_weight_std"] > 4 and f.evidence["logit_std"] > 10
    grad = by_id(findings, "grad.init_norm")
    assert grad.severity == "warning" and grad.evidence["grad_norm"] > 50 and "head" in grad.title


def test_a_fix_applied_brings_loss_back_to_ln_c():
    import torch

    from tunelab.diagnostics.model_probe import check_initial_loss

    tok = make_tokenizer()
    cfg = make_cfg()
    model = cls_model(tok, 280)
    with torch.no_grad():
        model.score.weight.normal_(0.0, 0.02)  # what model.head_init_std: 0.02 does
    ds = cls_dataset(tok, [(7 * i) % 280 for i in range(32)])
    f = by_id(
        check_initial_loss(CheckContext(cfg, plan_for(cfg), model=model, tokenizer=tok, train_dataset=ds)),
        "loss.initial",
    )
    assert f.severity == "info" and abs(f.evidence["ratio"] - 1) < 0.1


# ------------------------------------------------------------------------ (b) pooling on pad
def test_b_pooling_on_a_pad_token_is_an_error():
    from tunelab.diagnostics.model_probe import check_initial_loss

    tok = make_tokenizer()
    cfg = make_cfg()
    model = cls_model(tok, 4, mask_pooling=False)  # stock head: pools the last token != config.pad_token_id
    model.config.pad_token_id = tok.unk_token_id  # config disagrees with the tokenizer's pad: pads count as real
    ds = cls_dataset(tok, [i % 4 for i in range(32)])
    findings = check_initial_loss(CheckContext(cfg, plan_for(cfg), model=model, tokenizer=tok, train_dataset=ds))
    f = by_id(findings, "pooling.pad_position")
    assert f.severity == "error" and 0.3 < f.evidence["pooled_on_pad_share"] <= 1.0
    assert f.evidence["config_pad_token_id"] != f.evidence["tokenizer_pad_token_id"]


def test_b_correct_stock_pooling_is_not_flagged():
    from tunelab.diagnostics.model_probe import check_initial_loss

    tok = make_tokenizer()
    cfg = make_cfg()
    model = cls_model(tok, 4, mask_pooling=False)  # pad id agrees with the tokenizer: stock pooling is right
    ds = cls_dataset(tok, [i % 4 for i in range(32)])
    findings = check_initial_loss(CheckContext(cfg, plan_for(cfg), model=model, tokenizer=tok, train_dataset=ds))
    assert "pooling.pad_position" not in ids(findings)


# ---------------------------------------------------------------------- (c) labels outside head
def test_c_labels_outside_the_head():
    from tunelab.diagnostics.preflight import run_preflight

    tok = make_tokenizer()
    cfg = make_cfg()
    model = cls_model(tok, 4)
    ds = cls_dataset(tok, [i % 6 for i in range(48)])  # 6 classes in the data, 4 in the head
    findings = run_preflight(cfg, plan_for(cfg), None, model, tok, ds)
    f = by_id(findings, "labels.range")
    assert f.severity == "error" and f.evidence["bad_label_ids"] == [4, 5] and f.evidence["head_size"] == 4
    assert "doctor.check_failed" not in ids(findings)  # the model checks skip instead of crashing


# ------------------------------------------------------------------- (d) bf16 weights + scaler
def test_d_bf16_weights_with_fp16_scaler_from_config():
    from tunelab.diagnostics.precision import check_precision

    cfg = make_cfg(model={"dtype": "bfloat16"}, runtime={"precision": "fp16"})
    findings = check_precision(CheckContext(cfg, None, caps=fake_cuda()))  # decide_plan would raise; doctor reports
    assert "precision.scaler_dtype" in ids(findings, "error")


def test_d_bf16_weights_with_scaler_in_a_plan():
    from dataclasses import replace

    from tunelab.diagnostics.precision import plan_findings
    from tunelab.runtime.plan import decide_plan

    good = decide_plan(make_cfg(runtime={"precision": "fp16"}), fake_cuda())
    assert good.grad_scaler and not has_errors(plan_findings(good))
    bad = replace(good, weight_dtype="bfloat16")
    assert "precision.scaler_dtype" in ids(plan_findings(bad), "error")


def test_d_fp16_on_cpu_is_an_error_finding_not_a_crash():
    from tunelab.diagnostics.precision import check_precision
    from tunelab.runtime.plan import detect_capabilities

    cfg = make_cfg(runtime={"precision": "fp16", "device": "cpu"})
    findings = check_precision(CheckContext(cfg, None, caps=detect_capabilities("cpu")))
    assert "precision.fp16_cpu" in ids(findings, "error")


# ------------------------------------------------------------------------ (e) memory
def _big_config_dir(root: Path) -> Path:
    from transformers import AutoConfig

    # An 8B-parameter Llama shape: only config.json, counted on the meta device (no weights).
    cfg = AutoConfig.for_model(
        "llama",
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        vocab_size=128256,
    )
    out = root / "llama-8b-shape"
    cfg.save_pretrained(out)
    return out


def test_e_model_far_larger_than_device_with_offload_but_no_folder(tmp_path):
    from tunelab.diagnostics.memory import check_memory

    path = _big_config_dir(tmp_path)
    # classification loads the model whole: no placement, so no offload folder for device_map
    cfg = make_cfg("classification", model={"name_or_path": str(path), "device_map": "auto"})
    findings = check_memory(CheckContext(cfg, None, caps=fake_cuda(memory_gib=16)))
    f = by_id(findings, "memory.offload_folder")
    assert f.severity == "error" and f.evidence["params_m"] > 7000 and f.evidence["device_gib"] == 16
    assert "model.offload_folder" not in f.fix  # never advise a key the config does not have
    # a generative run offloads into <run_dir>/offload (models/placement.py): slow, but it loads
    cfg = make_cfg("sft", model={"name_or_path": str(path), "device_map": "auto"})
    findings = check_memory(CheckContext(cfg, None, caps=fake_cuda(memory_gib=16)))
    assert not has_errors(findings)
    assert by_id(findings, "memory.offload").evidence["offload_folder"] == "<run_dir>/offload"


def test_e_model_far_larger_than_device_recommends_lora_qlora(tmp_path):
    from tunelab.diagnostics.memory import check_memory

    path = _big_config_dir(tmp_path)
    cfg = make_cfg("sft", model={"name_or_path": str(path)})
    f = by_id(check_memory(CheckContext(cfg, None, caps=fake_cuda(memory_gib=16))), "memory.fit")
    assert f.severity == "error" and f.evidence["share"] > 6
    # bf16 LoRA needs the 16 GB of weights alone: the first option that fits is QLoRA
    assert f.evidence["alternatives_gib"]["lora"] > 16 > f.evidence["alternatives_gib"]["qlora+ckpt"]
    assert "lora.enabled: true" in f.fix and "load_in_4bit: true" in f.fix
    # with QLoRA + checkpointing the same model fits an 80 GB card
    cfg = make_cfg(
        "sft",
        model={"name_or_path": str(path), "lora": {"enabled": True}, "quantization": {"load_in_4bit": True}},
        training={"gradient_checkpointing": True, "per_device_train_batch_size": 4},
    )
    assert not has_errors(check_memory(CheckContext(cfg, None, caps=fake_cuda(memory_gib=80))))


def test_e_memory_advice_only_names_changes_the_config_does_not_already_use(tmp_path):
    from tunelab.diagnostics.memory import check_memory

    # already QLoRA + checkpointing, on a device it nearly fills: only a smaller batch is left to try
    cfg = make_cfg(
        "sft",
        model={
            "name_or_path": str(_big_config_dir(tmp_path)),
            "lora": {"enabled": True},
            "quantization": {"load_in_4bit": True},
        },
        training={"gradient_checkpointing": True, "per_device_train_batch_size": 4},
    )
    f = by_id(check_memory(CheckContext(cfg, None, caps=fake_cuda(memory_gib=6.3))), "memory.tight")
    assert f.severity == "warning" and 0.85 < f.evidence["share"] <= 1.0
    assert list(f.evidence["alternatives_gib"]) == ["smallest+batch1"]
    assert "training.per_device_train_batch_size: 1" in f.fix and "lora.enabled" not in f.fix


# ------------------------------------------------------------------------ (f) EOS masked
def _causal_setup(pad_is_eos: bool, mask_eos: bool):
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM

    tok = make_tokenizer()
    if pad_is_eos:
        tok.pad_token = tok.eos_token
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(tiny_config("qwen3", tok))
    rows = [tok(t)["input_ids"] + [tok.eos_token_id] for t in texts(24)]
    labels = [[-100] * 3 + r[3:-1] + [-100 if mask_eos else r[-1]] for r in rows]
    ds = Dataset.from_dict({"input_ids": rows, "attention_mask": [[1] * len(r) for r in rows], "labels": labels})
    return tok, model, ds


def test_f_eos_masked_out_of_causal_targets():
    from tunelab.diagnostics.tokenizer_checks import check_tokenizer

    tok, model, ds = _causal_setup(pad_is_eos=True, mask_eos=True)
    cfg = make_cfg("sft", model={"pad_token": "eos"})
    findings = check_tokenizer(CheckContext(cfg, plan_for(cfg), model=model, tokenizer=tok, train_dataset=ds))
    f = by_id(findings, "tokenizer.eos_target")
    assert f.severity == "error" and f.evidence["share_ending_in_eos"] == 0 and f.evidence["pad_is_eos"] is True
    assert "tokenizer.pad_eos" in ids(findings, "warning")


def test_f_eos_kept_in_targets_passes():
    from tunelab.diagnostics.tokenizer_checks import check_tokenizer

    tok, model, ds = _causal_setup(pad_is_eos=False, mask_eos=False)
    cfg = make_cfg("sft")
    findings = check_tokenizer(CheckContext(cfg, plan_for(cfg), model=model, tokenizer=tok, train_dataset=ds))
    assert by_id(findings, "tokenizer.eos_target").severity == "info"
    assert not has_errors(findings)


# ------------------------------------------------------------------------ (g) warmup
def test_g_long_warmup_keeps_lr_near_zero():
    from tunelab.diagnostics.schedule import check_schedule

    # The seed: a 700-step warmup to 1e-5, lr 2.8e-7 at step 20.
    cfg = make_cfg(training={"warmup_steps": 700, "max_steps": 2000, "learning_rate": 1e-5})
    f = by_id(check_schedule(CheckContext(cfg, None)), "schedule.early_lr")
    assert f.severity == "warning"
    # the lr the 20th optimizer step uses (and the Trainer logs): warmup factor 19/700
    assert f.evidence["lr_at_step_20"] == pytest.approx(1e-5 * 19 / 700, rel=1e-3)
    assert f.evidence["warmup_steps"] == 700


def test_g_short_warmup_is_fine():
    from tunelab.diagnostics.schedule import check_schedule

    cfg = make_cfg(training={"warmup_steps": 0.06, "max_steps": 2000})
    findings = check_schedule(CheckContext(cfg, None))
    assert ids(findings) == {"schedule.plan"}


# ------------------------------------------------------------------------ (h) token_type_ids
def test_h_token_type_ids_headed_for_generate_on_a_decoder():
    import torch
    from transformers import AutoModelForCausalLM

    from tunelab.diagnostics.generation import check_generate_inputs

    tok = make_tokenizer(emit_token_type_ids=True)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(tiny_config("qwen3", tok))
    cfg = make_cfg("sft")
    f = by_id(check_generate_inputs(CheckContext(cfg, None, model=model, tokenizer=tok)), "generate.token_type_ids")
    assert f.severity == "warning" and "token_type_ids" in f.evidence["generate_error"]
    tok.model_input_names = ["input_ids", "attention_mask"]  # the fix
    assert check_generate_inputs(CheckContext(cfg, None, model=model, tokenizer=tok)) == []


# ------------------------------------------------------------------------ (i) starving loader
class SlowDataset:
    """A dataset whose __getitem__ does expensive per-sample work (here: sleeps)."""

    def __init__(self, inner, delay: float):
        self.inner, self.delay = inner, delay

    def __len__(self):
        return len(self.inner)

    def __getitem__(self, i):
        time.sleep(self.delay)
        return self.inner[i]


def test_i_loader_that_starves_the_model():
    from tunelab.diagnostics.pipeline import check_pipeline

    tok = make_tokenizer()
    cfg = make_cfg()
    model = cls_model(tok, 4)
    ds = SlowDataset(cls_dataset(tok, [i % 4 for i in range(64)]), delay=0.05)  # 0.4 s per batch of 8
    f = by_id(
        check_pipeline(CheckContext(cfg, plan_for(cfg), model=model, tokenizer=tok, train_dataset=ds)),
        "pipeline.loader",
    )
    assert f.severity == "warning" and f.evidence["loader_s_per_batch"] > f.evidence["step_s"]
    assert "dataloader_num_workers" in f.fix


# ------------------------------------------------------------------------ (j) NaN mid-training
def test_j_nan_mid_training_stops_run_and_keeps_last_good_checkpoint(tmp_path):
    import torch
    from safetensors.torch import load_file
    from transformers import Trainer, TrainingArguments

    from tunelab.diagnostics.monitors import HealthMonitor, default_monitors

    tok = make_tokenizer()
    model = cls_model(tok, 4)
    ds = cls_dataset(tok, [i % 4 for i in range(64)])
    nan_at, calls = 5, {"n": 0}

    def poison(module, args, kwargs, output):  # the 5th training forward returns a NaN loss
        if module.training:
            calls["n"] += 1
            if calls["n"] == nan_at:
                output["loss"] = output["loss"] * float("nan")
        return output

    model.register_forward_hook(poison, with_kwargs=True)
    cfg = make_cfg()
    monitors = default_monitors(tmp_path, cfg)
    args = TrainingArguments(
        output_dir=str(tmp_path / "checkpoints"),
        max_steps=10,
        save_strategy="steps",
        save_steps=2,
        logging_steps=1,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        use_cpu=True,
        report_to=[],
        disable_tqdm=True,
        eval_strategy="no",
    )
    from transformers import DataCollatorWithPadding

    trainer = Trainer(
        model=model, args=args, train_dataset=ds, data_collator=DataCollatorWithPadding(tok), callbacks=monitors
    )
    trainer.train()

    monitor = monitors[0]
    assert isinstance(monitor, HealthMonitor) and monitor.tripped
    assert trainer.state.global_step == nan_at  # stopped right there, not at max_steps=10
    saved = sorted(int(p.name.split("-")[1]) for p in (tmp_path / "checkpoints").glob("checkpoint-*"))
    assert saved == [2, 4]  # nothing saved from the poisoned step on
    weights = load_file(str(tmp_path / "checkpoints" / "checkpoint-4" / "model.safetensors"))
    assert weights and all(torch.isfinite(w).all() for w in weights.values())
    assert all(torch.isfinite(p).all() for p in model.parameters())  # the poisoned update was never applied
    health = json.loads((tmp_path / "health.json").read_text())
    assert health["findings"][0]["id"] == "monitor.nonfinite" and health["findings"][0]["evidence"]["step"] == nan_at
    events = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert any(e["kind"] == "health" and e["id"] == "monitor.nonfinite" for e in events)


# ------------------------------------------------------------------------ live monitors (unit)
class _State:
    def __init__(self, step: int = 0):
        self.global_step, self.is_world_process_zero = step, True


class _Control:
    should_training_stop = should_save = False


def test_monitor_grad_spike_and_plateau_are_warnings_with_evidence(tmp_path):
    from tunelab.diagnostics.monitors import HealthMonitor

    mon = HealthMonitor(tmp_path, spike_factor=10, plateau_logs=5, echo=False)
    control = _Control()
    for step in range(1, 9):  # steady grad norms around 1, loss falling
        mon.on_log(None, _State(step), control, logs={"loss": 2.0 - 0.1 * step, "grad_norm": 1.0 + 0.01 * step})
    assert mon.findings == []
    mon.on_log(None, _State(9), control, logs={"loss": 1.1, "grad_norm": 214.0})  # the seed's spike size
    spike = mon.findings[-1]
    assert spike.id == "monitor.grad_spike" and spike.evidence["step"] == 9 and spike.evidence["running_median"] < 1.1
    for step in range(10, 16):  # no new minimum for 5 logs
        mon.on_log(None, _State(step), control, logs={"loss": 1.5, "grad_norm": 1.0})
    assert mon.findings[-1].id == "monitor.plateau" and mon.findings[-1].evidence["logs_without_improvement"] == 5
    assert not control.should_training_stop  # warnings never stop a run
    health = json.loads((tmp_path / "health.json").read_text())
    assert [f["id"] for f in health["findings"]] == ["monitor.grad_spike", "monitor.plateau"]


def test_monitor_tolerates_fp16_scaler_overflow_but_not_a_run_of_them():
    import torch

    from tunelab.diagnostics.monitors import SCALER_OVERFLOW_PATIENCE, HealthMonitor

    model = torch.nn.Linear(2, 2)
    mon = HealthMonitor(None, grad_scaler=True, echo=False)
    control = _Control()
    for i in range(SCALER_OVERFLOW_PATIENCE):
        model.weight.grad = torch.full_like(model.weight, float("inf"))
        mon.on_pre_optimizer_step(None, _State(i), control, model=model)
        if i < SCALER_OVERFLOW_PATIENCE - 1:
            assert not mon.tripped and model.weight.grad is not None  # the scaler skips this step itself
    assert mon.tripped and control.should_training_stop and model.weight.grad is None


# ------------------------------------------------------------------------ doctor command (end to end)
def _write_run_config(root: Path, **extra: str) -> Path:
    import csv

    from tiny import tiny_model_dir

    model_dir = tiny_model_dir(root, "qwen3", head="classification", num_labels=3)
    with open(root / "train.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "text", "label"])
        for i, text in enumerate(texts(60)):
            writer.writerow([i, text, "abc"[i % 3]])
    lines = [
        "name: doc",
        f"output_dir: {root / 'runs'}",
        "task: {type: classification}",
        f"data: {{train_file: {root / 'train.csv'}, max_length: 32, cache_dir: {root / 'cache'}}}",
        f"model: {{name_or_path: {model_dir}}}",
        "training: {per_device_train_batch_size: 8, num_train_epochs: 1}",
        "tracking: none",
        *[f"{k}: {v}" for k, v in extra.items()],
    ]
    path = root / "config.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow
def test_doctor_command_healthy_then_planted_precision_error(tmp_path, capsys):
    from tunelab.config.loader import load_config

    def doctor_command(cfg, as_json: bool) -> int:  # what `tunelab doctor --json` does (cli.py)
        from tunelab import api

        findings = api.doctor(cfg, quiet=as_json)
        print(json.dumps(findings.to_json()))
        return 0 if findings.ok else 1

    path = _write_run_config(tmp_path)
    assert doctor_command(load_config(path), as_json=True) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["counts"]["error"] == 0
    found = {f["id"] for f in report["findings"]}
    assert {
        "precision.plan",
        "memory.plan",
        "loss.initial",
        "grad.init_norm",
        "pipeline.loader",
        "schedule.plan",
    } <= found

    # fp16 on a CPU machine: decide_plan raises DeviceError; doctor reports it and still checks the data
    path = _write_run_config(tmp_path, runtime="{precision: fp16, device: cpu}")
    assert doctor_command(load_config(path), as_json=True) == 1
    report = json.loads(capsys.readouterr().out)
    assert "precision.fp16_cpu" in {f["id"] for f in report["findings"] if f["severity"] == "error"}
    assert "labels.balance" in {f["id"] for f in report["findings"]}


def test_overfit_reports_fully_masked_targets():
    from tunelab.diagnostics.overfit import check_overfit

    tok, model, ds = _causal_setup(pad_is_eos=False, mask_eos=False)
    ds = ds.map(lambda r: {"labels": [-100] * len(r["labels"])})  # a masking bug: nothing supervised
    cfg = make_cfg("sft", doctor={"overfit_steps": 3})
    f = by_id(
        check_overfit(CheckContext(cfg, plan_for(cfg), model=model, tokenizer=tok, train_dataset=ds, overfit=True)),
        "overfit.one_batch",
    )
    assert f.severity == "error" and f.evidence["supervised_targets"] == 0 and "masked" in f.title


def test_padding_efficiency_per_strategy_on_known_lengths():
    from tunelab.diagnostics.lengths import padding_efficiency

    eff = padding_efficiency([10] * 64, batch_size=8, max_length=20)
    assert eff == {"max_length": 0.5, "dynamic": 1.0, "grouped": 1.0, "bucketed": 1.0, "packed": 1.0}
    eff = padding_efficiency([2, 30] * 32, batch_size=2, max_length=16)  # rows past max_length count truncated
    assert all(0 < v <= 1 for v in eff.values())
    assert eff["grouped"] > eff["dynamic"]  # sorting pairs the 2s with 2s


def test_truncation_counts_exactly_and_names_the_untruncated_tail():
    from datasets import Dataset

    from tunelab.diagnostics.lengths import check_lengths

    full = [10 + i % 14 for i in range(64)]  # 10..23 tokens before truncation at 12
    ds = Dataset.from_dict({"input_ids": [[1] * min(12, n) for n in full], "untruncated_length": full})
    f = by_id(
        check_lengths(CheckContext(make_cfg(data={"max_length": 12}), None, train_dataset=ds)),
        "lengths.truncation_inputs",
    )
    assert f.severity == "warning"
    assert f.evidence["truncated_share"] == pytest.approx(
        sum(n > 12 for n in full) / 64, abs=1e-4
    )  # rows of exactly 12 are whole
    assert f.evidence["p99_untruncated"] == 23 and "p99 is 23 before truncation" in f.fix
