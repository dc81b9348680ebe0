"""The bench harness: same samples per configuration, exact padding accounting, files written."""

from __future__ import annotations

import json
import random
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")

from tiny import make_tokenizer, tiny_config  # noqa: E402
from tunelab.bench.harness import build_specs, run_bench, whole_cycles  # noqa: E402
from tunelab.bench.measure import grouped_cycle_steps  # noqa: E402
from tunelab.bench.report import write_results  # noqa: E402
from tunelab.errors import ConfigError  # noqa: E402
from tunelab.models.pooling import enable_mask_pooling  # noqa: E402

PLAN = SimpleNamespace(precision="fp32", dataloader_num_workers=0, dataloader_pin_memory=False)
MAX_LEN = 32


def _rows(n=80, seed=0):
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        k = rng.randint(2, MAX_LEN)
        rows.append(
            {
                "input_ids": [rng.randrange(10, 600) for _ in range(k)],
                "attention_mask": [1] * k,
                "labels": rng.randrange(3),
                "length": k,
            }
        )
    return rows


def test_steps_cover_whole_length_group_cycles():
    assert grouped_cycle_steps(10_000, 16) == 50  # transformers' default mega-batch: 50 batches
    assert grouped_cycle_steps(80, 4) == 5
    assert whole_cycles(7, 80, 4) == 10 and whole_cycles(3, 80, 4) == 5 and whole_cycles(10, 80, 4) == 10


def test_specs_always_have_naive_first_and_ideal_last():
    specs = build_specs(PLAN, ["grouped", "packed", "auto"], ("grouped", "auto -> grouped: why"), packable=False)
    names = [s.name for s in specs]
    assert names == ["naive", "grouped", "auto", "ideal"]  # packed dropped: model cannot pack
    naive = specs[0]
    assert (naive.strategy, naive.precision, naive.order, naive.num_workers) == ("max_length", "fp32", "random", 0)
    assert specs[2].strategy == "grouped" and specs[1].order == "grouped"
    with pytest.raises(ConfigError, match="unknown strategy"):
        build_specs(PLAN, ["fastest"], ("grouped", ""), packable=True)


def test_run_bench_accounts_every_configuration_on_the_same_samples(tmp_path):
    from transformers import AutoModelForSequenceClassification

    tok = make_tokenizer()
    rows = _rows(n=48)
    batch, steps = 4, whole_cycles(2, len(rows), 4)
    assert steps == 3

    def make_model():
        return enable_mask_pooling(
            AutoModelForSequenceClassification.from_config(tiny_config("qwen3", tok, num_labels=3))
        )

    specs = build_specs(PLAN, ["dynamic", "grouped", "packed"], ("grouped", "auto"), packable=True)
    results = run_bench(
        make_model,
        rows,
        tokenizer=tok,
        task_kind="classification",
        max_length=MAX_LEN,
        batch_size=batch,
        steps=steps,
        specs=specs,
        device="cpu",
        warmup_steps=1,
    )
    by = {r.name: r for r in results}
    assert all(r.samples == steps * batch and r.steps == steps for r in results)
    # naive computes exactly batch x max_length tokens per step, packed and ideal compute no padding.
    naive = by["naive"]
    assert naive.padded_tokens_per_s * naive.seconds == pytest.approx(steps * batch * MAX_LEN)
    assert naive.padding_efficiency < 0.7
    assert by["packed"].padding_efficiency == 1.0 and by["ideal"].padding_efficiency == 1.0
    assert by["grouped"].padding_efficiency > by["dynamic"].padding_efficiency
    # Same random order and same initial weights: naive, dynamic and packed see identical samples,
    # so their first-step losses agree (padding and packing do not change the loss).
    assert by["dynamic"].losses[0] == pytest.approx(naive.losses[0], abs=1e-5)
    assert by["packed"].losses[0] == pytest.approx(naive.losses[0], abs=1e-5)

    paths = write_results(results, tmp_path / "bench", {"config": "tiny", "steps": steps, "batch_size": batch})
    assert sorted(p.name for p in paths) == ["bench.json", "bench.md", "bench.png"]
    data = json.loads((tmp_path / "bench" / "bench.json").read_text())
    assert [r["name"] for r in data["results"]] == ["naive", "dynamic", "grouped", "packed", "ideal"]
    assert data["results"][0]["vs_naive"] == 1.0
    md = (tmp_path / "bench" / "bench.md").read_text()
    assert "| naive" in md and "| ideal" in md and "padding eff." in md
    assert (tmp_path / "bench" / "bench.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_tunelab_bench_cli_on_a_config(tmp_path):
    """`tunelab bench CONFIG` end to end: the config's own data (through the cache) and model."""
    from typer.testing import CliRunner

    from tiny import tiny_model_dir
    from tunelab.cli import app

    model = tiny_model_dir(tmp_path, "qwen3", head="classification", num_labels=2)
    rng = random.Random(0)
    lines = ["id,text,label"] + [
        f"{i},{'good' if i % 2 else 'bad'} " + " ".join(["fox"] * rng.randint(1, 20)) + f",{'pos' if i % 2 else 'neg'}"
        for i in range(48)
    ]
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        f"task: {{type: classification}}\ndata: {{train_file: {tmp_path / 'train.csv'}, max_length: 24, "
        f"cache_dir: {tmp_path / 'cache'}}}\nmodel: {{name_or_path: {model}}}\n"
        "training: {per_device_train_batch_size: 4}\ntracking: none\n",
        encoding="utf-8",
    )
    out = tmp_path / "bench"
    result = CliRunner().invoke(
        app, ["bench", str(cfg), "--steps", "1", "--strategies", "grouped,auto", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads((out / "bench.json").read_text())
    names = [r["name"] for r in data["results"]]
    assert names == ["naive", "grouped", "auto", "ideal"]
    from tunelab.data.batching import AUTO_FALLBACK

    assert data["meta"]["auto"]["strategy"] == AUTO_FALLBACK  # CPU: no varlen kernel
    assert data["meta"]["steps"] == whole_cycles(1, data["meta"]["rows"], 4) > 1  # whole cycles, not the 1 asked
    assert all(r["samples"] == data["meta"]["steps"] * 4 for r in data["results"])
    assert (out / "bench.png").is_file() and "| naive" in (out / "bench.md").read_text()
    # the terminal says why 1 step became several
    said = " ".join(result.output.split())
    assert f"{data['meta']['steps']} optimizer steps (--steps 1 rounded up to whole length-group cycles" in said
    assert "untimed warm-up steps" in said


def test_steps_note_explains_rounding_and_warmup():
    from tunelab.bench.harness import steps_note

    assert steps_note(10, 10, 80, 4) == "10 optimizer steps, after 3 untimed warm-up steps (batch 4, 80 rows)"
    assert steps_note(7, 10, 80, 4).startswith(
        "10 optimizer steps (--steps 7 rounded up to whole length-group cycles of 5"
    )
    assert steps_note(None, 10, 80, 4).startswith("10 optimizer steps (whole length-group cycles of 5 steps")


def test_every_row_uses_the_fused_adamw_and_records_load_and_cpu_time():
    """Same optimizer for every row (fused where torch has it, as HF Trainer's default), load recorded."""
    from transformers import AutoModelForSequenceClassification

    from tunelab.bench.measure import BenchSpec, make_optimizer, run_steps
    from tunelab.bench.report import markdown_table

    tok = make_tokenizer()
    model = AutoModelForSequenceClassification.from_config(tiny_config("qwen3", tok, num_labels=3))
    opt = make_optimizer(model, 1e-3)
    assert isinstance(opt, torch.optim.AdamW) and opt.defaults["fused"] is True
    ids = torch.tensor([[11, 12, 13, 14]])
    batches = iter([{"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": torch.tensor([1])}] * 2)
    result = run_steps(model, batches, 2, BenchSpec("naive", "dynamic"), "cpu", warmup=None)
    assert result.load_avg >= 0.0  # os.getloadavg on Linux: a number, not the NaN placeholder
    table = markdown_table([result])
    assert f"| {result.load_avg:.1f} |" in table and "load (1m)" in table
    # CPU runs are also measured per process CPU-second (fair on a CPU shared with other jobs).
    assert result.cpu_seconds > 0 and result.samples_per_cpu_s == pytest.approx(2 / result.cpu_seconds)
    assert "| samples/CPU-s | vs naive (CPU) |" in table and f"| {result.samples_per_cpu_s:.1f} | 1.00x |" in table


def test_benchmark_sections_replace_only_their_own_block(tmp_path, monkeypatch):
    """docs/benchmarks.md mixes hand-written analysis with generated sections: a rerun keeps the prose."""
    import sys
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    common = __import__("common")
    monkeypatch.setattr(common, "DOCS", tmp_path / "benchmarks.md")
    common.DOCS.write_text("# Benchmarks\n\nprose before\n", encoding="utf-8")
    common.write_section("predict", "first table")
    common.write_section("tokenize", "tokenize table")
    text = common.DOCS.read_text(encoding="utf-8") + "\nprose after\n"
    common.DOCS.write_text(text, encoding="utf-8")
    common.write_section("predict", "second table")
    text = common.DOCS.read_text(encoding="utf-8")
    assert "second table" in text and "first table" not in text
    assert text.count("<!-- bench:predict -->") == 1 and "tokenize table" in text
    assert text.index("prose before") < text.index("second table") < text.index("prose after")
    assert "MET" in common.verdict(3.1, 3.0, "x") and "MISSED" in common.verdict(2.9, 3.0, "x")
    assert "MISSED" in common.verdict(2.5, 2.0, "wait", higher=False)
    sys.modules.pop("common", None)
