"""`tunelab diff` on real tiny runs: speed ranking, learning-rate explanation, data hashes, run vs config,
JSON schema and the comparison page in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from test_pipeline_e2e import make_data, write_config
from tiny import tiny_model_dir
from tunelab.cli import app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _train(config: Path, run_dir: Path) -> Path:
    result = CliRunner().invoke(app, ["train", str(config), "--run-dir", str(run_dir)], env=OFFLINE)
    assert result.exit_code == 0, result.output
    return run_dir


def _config(root: Path, model: Path, files: dict[str, Path], name: str, **changes: dict) -> Path:
    """write_config's config (tracking off), with sections updated key by key."""
    cfg = yaml.safe_load(write_config(root, model, files).read_text())
    cfg.update(name=name, tracking={"backend": "none"})
    for section, values in changes.items():
        cfg[section].update(values)
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """slow: pad to max_length 384, no loader workers, 10 warmup steps; fast: grouped, 1 worker, no warmup;
    other_data: the fast config on different training rows."""
    root = tmp_path_factory.mktemp("diff")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HOME", str(root / "hf_home"))
        model = tiny_model_dir(root / "models", "qwen3", head="classification", num_labels=3)
        data = make_data(root / "data")
        other = make_data(root / "data2", seed=1)
        common = {"max_length": 384}
        slow = _config(
            root,
            model,
            data,
            "slow",
            data={**common, "batching": "max_length"},
            training={"dataloader_num_workers": 0, "warmup_steps": 10},
        )
        fast = _config(
            root,
            model,
            data,
            "fast",
            data={**common, "batching": "grouped"},
            training={"dataloader_num_workers": 1, "warmup_steps": 0},
        )
        moved = _config(
            root,
            model,
            other,
            "fast2",
            data={**common, "batching": "grouped"},
            training={"dataloader_num_workers": 1, "warmup_steps": 0},
        )
        return {
            "slow": _train(slow, root / "runs" / "slow"),
            "fast": _train(fast, root / "runs" / "fast"),
            "other_data": _train(moved, root / "runs" / "other_data"),
            "fast_config": fast,
        }


def _diff_json(*args: str) -> dict:
    result = CliRunner().invoke(app, ["diff", *args, "--json"], env=OFFLINE)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_training_records_what_diff_needs(runs):
    history = [json.loads(line) for line in (runs["slow"] / "history.jsonl").read_text().splitlines()]
    setup = next(r for r in history if r["kind"] == "setup")
    assert setup["batching"] == "max_length" and setup["effective_batch_size"] == 8
    summary = next(r for r in history if r["kind"] == "summary")
    # Pad-to-max_length: every training row computes 384 tokens, whatever its length.
    seen = max(r["tokens_seen"] for r in history if r["kind"] == "train")
    rows = json.loads((runs["slow"] / "data_manifest.json").read_text())["rows"]["train"] * 2  # 2 epochs
    assert summary["padding_efficiency"] == pytest.approx(seen / (rows * 384), abs=1e-3)
    assert 0 <= summary["data_wait_share"] < 1 and summary["step_time_s"] > 0
    fast = [json.loads(line) for line in (runs["fast"] / "history.jsonl").read_text().splitlines()]
    assert next(r for r in fast if r["kind"] == "summary")["padding_efficiency"] > 3 * summary["padding_efficiency"]
    info = json.loads((runs["slow"] / "run.json").read_text())
    assert info["versions"]["torch"] and info["versions"]["transformers"]


def test_batching_ranks_first_for_speed_and_warmup_explains_the_lr(runs):
    out = _diff_json(str(runs["slow"]), str(runs["fast"]))
    assert out["schema"] == "tunelab.diff/1"
    # The documented schema (docs/diff.md): a change here is a schema change.
    assert set(out) == {"schema", "a", "b", "headline", "speed", "results", "differences", "hidden_differences"}
    assert set(out["speed"]) == {
        "metric", "a", "b", "basis", "slower", "ratio", "factors", "explained", "unexplained", "not_modelled", "note"
    }  # fmt: skip
    assert set(out["speed"]["factors"][0]) == {"key", "title", "factor", "basis", "why", "a", "b", "modelled"}
    assert set(out["results"]) == {"metric", "explanations"}
    assert set(out["results"]["explanations"][0]) == {"key", "title", "why", "weight", "a", "b"}
    assert set(out["differences"][0]) == {"key", "a", "b", "noise", "reason"}
    documented = (Path(__file__).resolve().parents[1] / "docs" / "diff.md").read_text()
    assert all(f'"{key}"' in documented for key in out["speed"])
    speed = out["speed"]
    assert speed["basis"] == "measured" and speed["slower"] == "A" and speed["ratio"] > 1
    first = speed["factors"][0]
    assert first["key"] == "batching" and "max_length vs grouped" in first["title"]
    assert first["a"]["padding_efficiency"] < first["b"]["padding_efficiency"]
    keys = [f["key"] for f in speed["factors"]]
    assert "data_wait" in keys  # workers 0 vs 1 is named, whichever way it went on this machine
    wait = next(f for f in speed["factors"] if f["key"] == "data_wait")
    assert "dataloader_num_workers 0 vs 1" in wait["title"]
    assert speed["unexplained"] is not None and speed["explained"] > 0
    lr = next(e for e in out["results"]["explanations"] if e["key"] == "learning_rate_schedule")
    assert "warmup_steps" in lr["title"] and lr["weight"] == 3
    assert float(lr["a"]["1"]) < float(lr["b"]["1"])  # warmup starts at ~0; no warmup at the peak lr
    shown = {d["key"] for d in out["differences"]}
    assert {"config.data.batching", "config.training.warmup_steps", "plan.dataloader_num_workers"} <= shown
    assert "config.name" not in shown and "run.created_utc" not in shown  # noise hidden ...
    assert out["hidden_differences"] > 0
    everything = {d["key"] for d in _diff_json(str(runs["slow"]), str(runs["fast"]), "--all")["differences"]}
    assert {"config.name", "run.created_utc"} <= everything  # ... unless --all


def test_same_config_on_different_data_reports_the_data_hash(runs):
    out = _diff_json(str(runs["fast"]), str(runs["other_data"]))
    data = [e for e in out["results"]["explanations"] if e["key"] == "data.train_file"]
    assert data and data[0]["weight"] == 3 and data[0]["a"] != data[0]["b"]
    assert "sha256" in data[0]["title"]
    keys = {d["key"] for d in out["differences"]}
    assert "data.train.sha256" in keys and "config.data.batching" not in keys


def test_run_against_its_own_config_reports_nothing_that_matters(runs):
    out = _diff_json(str(runs["fast"]), str(runs["fast_config"]))
    assert out["b"]["kind"] == "config"
    assert out["differences"] == [], out["differences"]
    assert out["results"]["explanations"] == []
    assert out["speed"]["factors"] == [] and out["speed"]["basis"] == "estimated" and out["speed"]["slower"] is None
    assert any("no speed difference" in line for line in out["headline"])


def test_run_against_a_slower_config_is_estimated_before_training(runs, tmp_path):
    cfg = yaml.safe_load(Path(runs["fast_config"]).read_text())
    cfg["data"]["batching"] = "max_length"
    cfg["training"]["warmup_steps"] = 10
    planned = tmp_path / "planned.yaml"
    planned.write_text(yaml.safe_dump(cfg))
    out = _diff_json(str(runs["fast"]), str(planned))
    first = out["speed"]["factors"][0]
    assert out["speed"]["slower"] == "B" and first["key"] == "batching" and first["basis"] == "estimated"
    lr = next(e for e in out["results"]["explanations"] if e["key"] == "learning_rate_schedule")
    assert "warmup_steps" in lr["title"]


def test_a_run_stopped_by_a_too_large_head_is_explained(runs, tmp_path):
    cfg = yaml.safe_load(Path(runs["fast_config"]).read_text())
    cfg["model"]["head_init_std"] = 0.3  # the initial-loss blow-up of the seed project, at small scale
    bad = tmp_path / "bighead.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    result = CliRunner().invoke(app, ["train", str(bad), "--run-dir", str(tmp_path / "bighead")], env=OFFLINE)
    assert result.exit_code != 0 and "loss.initial" in result.output  # the doctor stopped it
    out = _diff_json(str(runs["fast"]), str(tmp_path / "bighead"))
    ranked = [e["key"] for e in out["results"]["explanations"]]
    assert ranked[0] == "initial_loss" and "head_init" in ranked
    first = out["results"]["explanations"][0]
    assert first["a"] < 1.2 < first["b"]  # initial loss / ln(C): ~1 for the good head, far above for the bad one


def test_latest_name_names_the_newest_run(runs, tmp_path):
    for stamp in ("20260101T000000Z", "20260102T000000Z"):  # `tunelab train` names runs <stamp>_<name>
        shutil.copytree(runs["fast"], tmp_path / "runs" / f"{stamp}_fast", ignore=shutil.ignore_patterns("model"))
    out = _diff_json(str(runs["slow"]), f"latest:{tmp_path / 'runs'}/fast")
    assert out["b"]["path"].endswith("20260102T000000Z_fast") and out["speed"]["factors"][0]["key"] == "batching"


def test_plain_output_off_a_terminal(runs):
    result = CliRunner().invoke(app, ["diff", str(runs["slow"]), str(runs["fast"])], env=OFFLINE)
    assert result.exit_code == 0, result.output
    assert "\x1b[" not in result.stdout and "─" not in result.stdout  # plain lines, no boxes
    assert re.search(r"Speed: A is slower by [\d.]+x \(measured\)", result.stdout)
    assert "#: 1; difference: batching max_length vs grouped; A: max_length, padding efficiency" in result.stdout


def test_diff_refuses_what_is_not_a_run(tmp_path):
    result = CliRunner().invoke(app, ["diff", str(tmp_path), str(tmp_path / "nope.txt")], env=OFFLINE)
    assert result.exit_code != 0 and "not a tunelab run directory" in result.output


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (scripts/test-setup.sh installs it with apt)")
def test_comparison_page_renders_in_headless_chromium(runs, tmp_path):
    result = CliRunner().invoke(app, ["report", str(runs["slow"]), "--compare", str(runs["fast"])], env=OFFLINE)
    assert result.exit_code == 0, result.output
    page = runs["slow"] / "compare_fast.html"
    html = page.read_text()
    assert not re.search(r'(src|href)="(https?:|//)', html)  # self-contained
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
    base += ["--disable-background-networking", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(base + ["--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    for title in ("Training curves", "Speed: differences ranked by effect", "Results: differences that move metrics"):
        assert title in dom.stdout
    assert dom.stdout.count('alt="compare_') == 3  # loss, throughput, learning rate overlaid
    assert "batching max_length vs grouped" in dom.stdout and "warmup_steps" in dom.stdout
    shot = tmp_path / "shot.png"
    res = subprocess.run(
        base + [f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri()], capture_output=True, timeout=120
    )
    assert res.returncode == 0 and shot.is_file()
    import numpy as np
    from PIL import Image

    assert np.asarray(Image.open(shot).convert("L")).std() > 10  # not a blank page
