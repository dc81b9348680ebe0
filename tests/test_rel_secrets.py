"""Guarantee 6 (secrets): credentials never reach logs, saved configs, MLflow, predictions or reports.

The end-to-end test plants secrets the ways a user really has them (credential env vars such as
HF_TOKEN / OPENAI_API_KEY / MLFLOW_TRACKING_PASSWORD, the variable named by baseline.api_key_env,
a password inside a URL and an api_key typed into a free-form config dict), runs
`tunelab train` (MLflow tracking on) + `predict` + `report`, then greps the bytes of every file
written and of stdout/stderr for each secret.
"""

from __future__ import annotations

import json
import logging
import secrets as pysecrets
from pathlib import Path

import pytest

from rel_support import make_project, tunelab
from tunelab.config.loader import parse_yaml, validate_config
from tunelab.safety.secrets import (
    MASK,
    RedactingFilter,
    install_log_redaction,
    is_secret_key,
    redact,
    redact_obj,
    redacted_config_yaml,
)


def _secret(prefix: str = "") -> str:
    return prefix + pysecrets.token_hex(16)  # unique per test run: a hit can only be a leak


# ------------------------------------------------------------------------------- units
def test_redact_masks_env_values_urls_and_token_shapes():
    env = {"MY_SERVICE_API_KEY": "plain-value-123456", "TOKENIZERS_PARALLELISM": "false", "PWD": "/home/me"}
    text = (
        "key plain-value-123456 in https://bob:hunter2hunter2@mlflow.example.com/x, hf_"
        + "a" * 30
        + " Authorization: Bearer abcdefghijkl /home/me false"
    )
    out = redact(text, env)
    for leaked in ("plain-value-123456", "hunter2hunter2", "hf_" + "a" * 30, "abcdefghijkl"):
        assert leaked not in out
    assert "https://bob:***@mlflow.example.com" in out
    assert "/home/me" in out and out.endswith("false")  # not credentials: left alone


@pytest.mark.parametrize(
    "key, secret",
    [
        ("api_key", True),
        ("OPENAI_API_KEY", True),
        ("hf_token", True),
        ("access_token", True),
        ("password", True),
        ("baseline.extra_body.api_key", True),
        ("client_secret", True),
        ("pad_token", False),
        ("model.pad_token", False),
        ("api_key_env", False),
        ("tokenizer", False),
        ("max_tokens", False),
        ("tokens_per_s", False),
        ("train_file", False),
    ],
)
def test_secret_key_names(key, secret):
    assert is_secret_key(key) is secret


def test_redact_obj_masks_by_key_and_value():
    out = redact_obj(
        {"extra": {"api_key": "x-literal-1", "n": 3}, "pad_token": "auto", "urls": ["http://u:p4ssw0rd@h/v1"]},
        environ={},
    )
    assert out == {"extra": {"api_key": MASK, "n": 3}, "pad_token": "auto", "urls": [f"http://u:{MASK}@h/v1"]}


def test_saved_config_is_redacted_and_still_loads(tmp_path):
    literal = _secret("lit-")
    raw = {
        "task": {"type": "classification"},
        "data": {"train_file": "t.csv"},
        "model": {"name_or_path": "m", "pad_token": "eos"},
        "evaluation": {"rouge": {"tokenizer": "whitespace"}},
        "baseline": {
            "base_url": f"https://alice:{literal}@llm.example.com/v1",
            "model": "x",
            "api_key_env": "SOME_API_KEY",
            "extra_body": {"api_key": literal},
        },
    }
    text = redacted_config_yaml(validate_config(raw))
    assert literal not in text
    again = validate_config(parse_yaml(text))  # run dirs reload it: masking must keep it valid
    assert again.model.pad_token == "eos" and again.evaluation.rouge.tokenizer == "whitespace"
    assert again.baseline.api_key_env == "SOME_API_KEY" and again.baseline.extra_body == {"api_key": MASK}


def test_log_filter_masks_records(monkeypatch, caplog):
    value = _secret("envsecret-")
    monkeypatch.setenv("HF_TOKEN", value)
    logger = logging.getLogger("tunelab.test_secrets")
    install_log_redaction(logger)
    install_log_redaction(logger)  # idempotent
    assert sum(isinstance(f, RedactingFilter) for f in logger.filters) == 1
    with caplog.at_level(logging.INFO, logger="tunelab.test_secrets"):
        logger.info("token is %s", value)
    assert value not in caplog.text and MASK in caplog.text


# --------------------------------------------------------------------------- full run
def _all_bytes(root: Path, skip: set[Path]) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and p not in skip}


@pytest.mark.slow
def test_planted_secrets_appear_in_no_output_of_a_full_run(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from tunelab.cli import app

    planted = {
        "HF_TOKEN": _secret("hf_"),
        "OPENAI_API_KEY": _secret("sk-"),
        "MLFLOW_TRACKING_PASSWORD": _secret("mlpw-"),
        "TUNELAB_TEST_API_KEY": _secret("named-"),  # referenced by baseline.api_key_env
    }
    url_password, literal = _secret("urlpw-"), _secret("lit-")
    cfg_path = make_project(tmp_path, num_train_epochs=1, save_steps=3, eval_steps=3)
    cfg = json.loads(cfg_path.read_text())
    cfg["tracking"] = {"uri": f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}", "experiment": "secrets"}
    cfg["baseline"] = {
        "base_url": f"https://alice:{url_password}@llm.example.com/v1",
        "model": "m",
        "api_key_env": "TUNELAB_TEST_API_KEY",
        "extra_body": {"api_key": literal},
    }
    cfg_path.write_text(json.dumps(cfg))
    run = tmp_path / "runs" / "secret_run"
    res = tunelab("train", str(cfg_path), "--run-dir", str(run), env={**planted, "MLFLOW_TRACKING_USERNAME": "alice"})
    assert res.returncode == 0, res.stderr[-3000:]
    assert (run / "model").is_dir() and list((tmp_path / "mlflow").rglob("*"))  # MLflow really wrote

    for k, v in planted.items():
        monkeypatch.setenv(k, v)
    runner = CliRunner()
    pred = runner.invoke(
        app, ["predict", str(run), "-i", str(tmp_path / "valid.csv"), "-o", str(tmp_path / "pred.jsonl")]
    )
    assert pred.exit_code == 0, pred.output
    rep = runner.invoke(app, ["report", str(run)])
    assert rep.exit_code == 0, rep.output

    written = _all_bytes(tmp_path, skip={cfg_path})  # the user's own config is input, not output
    assert any(p.name == "mlflow.db" for p in written) and (run / "report.html") in written
    outputs = {"train stdout": res.stdout, "train stderr": res.stderr, "predict": pred.output, "report": rep.output}
    for value in [*planted.values(), url_password, literal]:
        hits = [str(p.relative_to(tmp_path)) for p, data in written.items() if value.encode() in data]
        hits += [name for name, text in outputs.items() if value in text]
        assert not hits, f"secret {value[:6]}... leaked into {hits}"
    saved = (run / "config.yaml").read_text()
    assert "api_key_env: TUNELAB_TEST_API_KEY" in saved and f"alice:{MASK}@" in saved  # masked, not dropped


def test_global_redaction_covers_loggers_and_handlers_added_later(monkeypatch):
    """The CLI installs it once: a library logger created afterwards, with its own handler, still
    never writes a secret."""
    import io
    import logging

    from tunelab.safety.secrets import install_global_log_redaction

    monkeypatch.setenv("TUNELAB_TEST_API_KEY", "sk-planted-global-0123456789")
    original = logging.getLogRecordFactory()
    try:
        install_global_log_redaction()
        install_global_log_redaction()  # idempotent
        stream = io.StringIO()
        lib = logging.getLogger("some.library.added.later")
        handler = logging.StreamHandler(stream)
        lib.addHandler(handler)
        lib.propagate = False
        lib.warning("calling %s with key %s", "https://api.example", "sk-planted-global-0123456789")
        lib.removeHandler(handler)
    finally:
        logging.setLogRecordFactory(original)
    assert "sk-planted-global" not in stream.getvalue() and "api.example" in stream.getvalue()
