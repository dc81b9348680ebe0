"""End to end through the CLI: train (tiny BERT / tiny Qwen3) -> run files -> predict -> evaluate,
--resume, --set, misspelled keys, MLflow tracking and `tracking: none`."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from tiny import tiny_model_dir
from tunelab.cli import app

LABELS = {
    "billing": ["my card was charged twice", "refund my payment please", "the invoice amount is wrong"],
    "login": ["I cannot log in", "please reset my password", "my account is locked"],
    "shipping": ["where is my parcel", "the delivery is late", "my package has not arrived"],
}
OFFLINE = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def make_data(root: Path, n: int = 72, seed: int = 0) -> dict[str, Path]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = list(LABELS)[i % 3]
        rows.append(
            {
                "id": f"r{i:03d}",
                "text": f"{rng.choice(LABELS[label])} {rng.choice(['', 'today', 'now', 'thanks'])} {i}",
                "label": label,
            }
        )
    root.mkdir(parents=True, exist_ok=True)
    paths = {"train": root / "train.csv", "test": root / "test.csv", "labelled": root / "labelled.csv"}
    pd.DataFrame(rows).to_csv(paths["train"], index=False)
    held = rows[:24]
    rng.shuffle(held)  # order differs from train: predictions must follow the input order
    pd.DataFrame(held).drop(columns=["label"]).to_csv(paths["test"], index=False)
    pd.DataFrame(held).to_csv(paths["labelled"], index=False)
    return paths


def write_config(root: Path, model: Path, data: dict[str, Path], **sections) -> Path:
    cfg = {
        "name": "e2e",
        "output_dir": str(root / "runs"),
        "task": {"type": "classification"},
        "data": {
            "train_file": str(data["train"]),
            "test_file": str(data["test"]),
            "max_length": 32,
            "validation_split": 0.25,
            "cache_dir": str(root / "cache"),
        },
        "model": {"name_or_path": str(model)},
        "training": {
            "num_train_epochs": 2,
            "per_device_train_batch_size": 8,
            "logging_steps": 2,
            "learning_rate": 2e-3,
            "warmup_steps": 0,
        },
        "tracking": {"uri": f"sqlite:///{root / 'mlflow.db'}", "experiment": "e2e"},
    }
    for key, value in sections.items():
        cfg[key] = {**cfg.get(key, {}), **value} if isinstance(value, dict) else value
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def invoke(*args: str):
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result


def only_run(root: Path) -> Path:
    runs = [p for p in (root / "runs").iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


@pytest.fixture(scope="module")
def bert_run(tmp_path_factory):
    """One trained tiny-BERT run shared by the read-only tests below."""
    root = tmp_path_factory.mktemp("bert_e2e")
    with pytest.MonkeyPatch.context() as mp:
        for k, v in OFFLINE.items():
            mp.setenv(k, v)
        mp.setenv("HF_HOME", str(root / "hf_home"))
        model = tiny_model_dir(root / "models", "bert", head="base")
        data = make_data(root / "data")
        config = write_config(root, model, data)
        result = invoke("train", str(config), "--set", "training.learning_rate=0.003")
        assert result.exit_code == 0, result.output
        yield {"root": root, "run": only_run(root), "data": data, "config": config, "output": result.output}


@pytest.mark.slow
def test_train_writes_the_run_directory(bert_run):
    run = bert_run["run"]
    for name in (
        "config.yaml",
        "run.json",
        "data_manifest.json",
        "runtime_plan.json",
        "preflight.json",
        "metrics.json",
        "history.jsonl",
        "confusion_matrix.json",
        "confusion_matrix.png",
        "model/config.json",
        "model/model.safetensors",
        "model/tokenizer.json",
        "model/labels.json",
        "predictions/validation.jsonl",
        "predictions/test.jsonl",
    ):
        assert (run / name).is_file(), name
    assert not (run / "model" / "training_args.bin").exists()  # model/ carries no pickle
    # --set reached the saved config
    assert yaml.safe_load((run / "config.yaml").read_text())["training"]["learning_rate"] == 0.003
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["primary_metric"] == "macro_f1"
    assert set(metrics["validation"]) >= {"accuracy", "macro_f1", "weighted_f1"}
    assert set(metrics["validation_per_class"]) == set(LABELS)
    model_cfg = json.loads((run / "model/config.json").read_text())
    assert set(model_cfg["id2label"].values()) == set(LABELS)
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    train_rows = [h for h in history if h["kind"] == "train"]
    assert train_rows and all(h["tokens_per_s"] > 0 and h["samples_per_s"] > 0 for h in train_rows[1:])
    assert {"loss", "grad_norm", "learning_rate", "step", "epoch", "elapsed_s"} <= set(train_rows[-1])
    assert any(h["kind"] == "eval" and "eval_macro_f1" in h for h in history)
    cm = json.loads((run / "confusion_matrix.json").read_text())
    assert sum(map(sum, cm["matrix"])) == metrics["validation"]["num_samples"]
    assert str(run) in bert_run["output"].replace("\n", "")  # tells the user where the run is


@pytest.mark.slow
def test_validation_predictions_follow_h6_contract(bert_run):
    run = bert_run["run"]
    rows = [json.loads(line) for line in (run / "predictions/validation.jsonl").read_text().splitlines()]
    labels = json.loads((run / "data_manifest.json").read_text())["label_names"]
    assert rows and all({"id", "prediction", "label", "probs"} <= set(r) for r in rows)
    assert all(len(r["probs"]) == len(labels) and abs(sum(r["probs"]) - 1) < 1e-3 for r in rows)
    assert all(r["prediction"] == labels[max(range(len(labels)), key=r["probs"].__getitem__)] for r in rows)


@pytest.mark.slow
def test_predict_writes_input_order_with_top_k(bert_run, tmp_path):
    out = tmp_path / "out" / "pred.csv"
    result = invoke("predict", str(bert_run["run"]), "--input", str(bert_run["data"]["test"]), "--output", str(out))
    assert result.exit_code == 0, result.output
    pred = pd.read_csv(out)
    src = pd.read_csv(bert_run["data"]["test"])
    assert pred["id"].tolist() == src["id"].tolist()
    assert {"prediction", "probability", "top1_label", "top1_prob", "top3_label", "top3_prob"} <= set(pred.columns)
    assert (pred["prediction"] == pred["top1_label"]).all()
    assert ((pred["top1_prob"] >= pred["top2_prob"]) & (pred["top2_prob"] >= pred["top3_prob"])).all()
    assert set(pred["prediction"]) <= set(LABELS)
    # JSONL by suffix, with the full probability vector
    out_jsonl = tmp_path / "pred.jsonl"
    assert (
        invoke("predict", str(bert_run["run"]), "-i", str(bert_run["data"]["test"]), "-o", str(out_jsonl)).exit_code
        == 0
    )
    rows = [json.loads(line) for line in out_jsonl.read_text().splitlines()]
    assert [r["id"] for r in rows] == src["id"].tolist() and len(rows[0]["probs"]) == 3


@pytest.mark.slow
def test_predict_is_atomic_when_writing_fails(bert_run, tmp_path, monkeypatch):
    out = tmp_path / "pred.csv"
    out.write_text("old content\n")

    def broken_to_csv(self, path, *args, **kwargs):
        Path(path).write_text("id,prediction\nr0,half")  # a partial write, then the crash
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken_to_csv)
    with pytest.raises(OSError, match="disk full"):
        invoke("predict", str(bert_run["run"]), "--input", str(bert_run["data"]["test"]), "--output", str(out))
    assert out.read_text() == "old content\n"
    assert [p.name for p in tmp_path.iterdir()] == ["pred.csv"]  # no temp file left behind


def test_predict_rejects_bad_output_paths(bert_run, tmp_path):
    for bad, message in ((tmp_path / "pred.xlsx", "unknown format"), (tmp_path, "unknown format")):
        result = invoke("predict", str(bert_run["run"]), "-i", str(bert_run["data"]["test"]), "-o", str(bad))
        assert result.exit_code == 2 and message in result.output
    same = bert_run["data"]["test"]
    result = invoke("predict", str(bert_run["run"]), "-i", str(same), "-o", str(same))
    assert result.exit_code == 2 and "same file as --input" in result.output


@pytest.mark.slow
def test_evaluate_scores_a_labelled_file(bert_run):
    result = invoke("evaluate", str(bert_run["run"]), "--input", str(bert_run["data"]["labelled"]))
    assert result.exit_code == 0, result.output
    out = bert_run["run"] / "evaluations" / "labelled"
    report = json.loads((out / "metrics.json").read_text())
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    # the reported accuracy is that of the written predictions against the file's labels
    expected = sum(r["prediction"] == r["label"] for r in rows) / len(rows)
    assert report["accuracy"] == pytest.approx(expected) and report["num_samples"] == 24 == len(rows)
    assert (out / "confusion_matrix.png").is_file() and (out / "predictions.jsonl").is_file()
    assert "accuracy" in result.output


def test_evaluate_needs_labels(bert_run):
    result = invoke("evaluate", str(bert_run["run"]), "--input", str(bert_run["data"]["test"]))
    assert result.exit_code == 2 and "label" in result.output


def test_predict_and_evaluate_check_their_inputs_before_loading_the_model(bert_run, tmp_path, monkeypatch):
    from tunelab.pipeline import predict as predict_mod

    def no_model(*_a, **_k):  # loading took 8-9 s before the input was even read
        raise AssertionError("model loaded before the inputs were checked")

    monkeypatch.setattr(predict_mod, "load_trained_run", no_model)
    bad = tmp_path / "bad.csv"
    bad.write_text("id,words\n1,hello\n")
    out = str(tmp_path / "p.csv")
    result = invoke("predict", str(bert_run["run"]), "-i", str(bad), "-o", out)
    assert result.exit_code == 2 and "required column 'text' is missing" in result.output
    result = invoke("evaluate", str(bert_run["run"]), "-i", str(bert_run["data"]["test"]))
    assert result.exit_code == 2 and "label" in result.output
    result = invoke("predict", str(tmp_path / "no-such-run"), "-i", str(bad), "-o", out)
    assert result.exit_code != 0 and "run directory not found" in result.output


@pytest.mark.slow
def test_mlflow_gets_params_metrics_and_artifacts(bert_run):
    from mlflow.tracking import MlflowClient

    run = bert_run["run"]
    info = json.loads((run / "run.json").read_text())
    client = MlflowClient(tracking_uri=f"sqlite:///{bert_run['root'] / 'mlflow.db'}")
    mlrun = client.get_run(info["mlflow_run_id"])
    assert mlrun.info.status == "FINISHED"
    assert mlrun.data.params["training.learning_rate"] == "0.003"
    assert mlrun.data.params["model.name_or_path"].endswith("bert-base")
    assert len(client.get_metric_history(mlrun.info.run_id, "loss")) >= 2
    assert "final_validation_accuracy" in mlrun.data.metrics
    artifacts = {a.path for a in client.list_artifacts(mlrun.info.run_id)}
    assert {"config.yaml", "metrics.json", "confusion_matrix.png", "confusion_matrix.json"} <= artifacts
    assert not any(k.startswith("env") for k in mlrun.data.params)


def test_misspelled_key_exits_with_did_you_mean(tmp_path):
    data = make_data(tmp_path / "data", n=12)
    config = write_config(tmp_path, tmp_path / "model", data, training={"learning_rat": 0.1})
    result = invoke("train", str(config))
    assert result.exit_code == 2
    assert "training.learning_rat: unknown key; did you mean training.learning_rate?" in result.output.replace("\n", "")
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_resume_continues_from_last_checkpoint(tmp_path):
    model = tiny_model_dir(tmp_path / "models", "bert", head="base")
    data = make_data(tmp_path / "data", n=48)
    steps = {"eval_strategy": "steps", "save_strategy": "steps", "eval_steps": 2, "save_steps": 2, "logging_steps": 1}
    config = write_config(tmp_path, model, data, training={"max_steps": 4, **steps}, tracking="none")
    assert invoke("train", str(config), "--skip-doctor").exit_code == 0
    run = only_run(tmp_path)
    assert (run / "checkpoints" / "checkpoint-4").is_dir()
    result = invoke("train", str(config), "--resume", "--skip-doctor", "--set", "training.max_steps=6")
    assert result.exit_code == 0, result.output
    assert only_run(tmp_path) == run  # same run directory, continued
    state = json.loads((run / "checkpoints" / "checkpoint-6" / "trainer_state.json").read_text())
    assert state["global_step"] == 6
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    train_steps = [h["step"] for h in history if h["kind"] == "train"]
    # the second process started at step 5: steps 1..4 were not trained again
    assert train_steps == [1, 2, 3, 4, 5, 6], train_steps
    assert yaml.safe_load((run / "config.yaml").read_text())["training"]["max_steps"] == 6


def test_resume_without_a_run_is_a_clear_error(tmp_path):
    data = make_data(tmp_path / "data", n=12)
    config = write_config(tmp_path, tmp_path / "model", data)
    result = invoke("train", str(config), "--resume")
    assert result.exit_code == 2 and "no run of 'e2e' to resume" in result.output


@pytest.mark.slow
def test_decoder_classifier_with_added_pad_and_no_tracking(tmp_path, monkeypatch):
    """Tiny Qwen3 without a pad token: a dedicated pad is added (not EOS); tracking none writes nothing."""
    env_store = tmp_path / "env_mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{env_store}")
    model = tiny_model_dir(tmp_path / "models", "qwen3", head="causal", pad=False)
    data = make_data(tmp_path / "data", n=48)
    config = write_config(
        tmp_path, model, data, tracking="none", training={"max_steps": 4, "eval_strategy": "no", "save_strategy": "no"}
    )
    result = invoke("train", str(config), "--skip-doctor")
    assert result.exit_code == 0, result.output
    run = only_run(tmp_path)
    from transformers import AutoConfig, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(run / "model")
    assert tok.pad_token == "<|pad|>" and tok.pad_token_id != tok.eos_token_id
    assert AutoConfig.from_pretrained(run / "model").pad_token_id == tok.pad_token_id
    assert (run / "predictions" / "test.jsonl").is_file()
    # tracking: none -> no store anywhere, no MLflow ids recorded
    assert (
        not env_store.exists()
        and not (tmp_path / "mlflow.db").exists()
        and not (tmp_path / "runs" / "mlflow.db").exists()
    )
    assert "mlflow_run_id" not in json.loads((run / "run.json").read_text())
    out = tmp_path / "pred.csv"
    assert invoke("predict", str(run), "-i", str(data["test"]), "-o", str(out)).exit_code == 0
    assert pd.read_csv(out)["id"].tolist() == pd.read_csv(data["test"])["id"].tolist()
