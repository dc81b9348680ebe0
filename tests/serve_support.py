"""Helpers for the `tunelab serve` tests: tiny trained runs, a server on a free loopback port."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import yaml
from typer.testing import CliRunner

from test_pipeline_e2e import make_data
from tiny import tiny_model_dir
from tunelab.cli import app as cli_app


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli_app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def only_run(root: Path) -> Path:
    runs = [p for p in (root / "runs").iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def _train(root: Path, model: Path, files: dict[str, Path], task: dict, **sections: Any) -> Path:
    cfg: dict[str, Any] = {
        "name": "serve",
        "output_dir": str(root / "runs"),
        "task": task,
        "data": {"train_file": str(files["train"]), "max_length": 48, "cache_dir": str(root / "cache")},
        "model": {"name_or_path": str(model)},
        "training": {
            "per_device_train_batch_size": 8,
            "logging_steps": 5,
            "warmup_steps": 0,
            "eval_strategy": "no",
            "save_strategy": "no",
        },
        "tracking": "none",
        "doctor": {"enabled": False},
    }
    for key, value in sections.items():
        cfg[key] = {**cfg.get(key, {}), **value}
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    invoke("train", str(path))
    return only_run(root)


def classification_run(root: Path) -> dict[str, Any]:
    """Tiny BERT that learned 3 intents, and `tunelab predict`'s output on 24 held-out rows."""
    data = make_data(root / "data")
    model = tiny_model_dir(root / "models", "bert", head="base")
    run = _train(
        root,
        model,
        data,
        {"type": "classification"},
        training={"num_train_epochs": 4, "learning_rate": 3e-3},
        inference={"batch_size": 32},
    )
    out = root / "predicted.csv"
    invoke("predict", str(run), "--input", str(data["test"]), "--output", str(out))
    return {"run": run, "rows": pd.read_csv(data["test"]), "predicted": pd.read_csv(out)}


def summarization_run(root: Path) -> dict[str, Any]:
    """Tiny BART trained on 4 dialogues, and `tunelab predict`'s summaries of 8 rows.

    English (words the tiny tokenizer has whole): a few dozen steps on Korean text can leave the
    model emitting lone UTF-8 byte tokens, which decode to nothing, and an all-empty answer would
    make the comparison with `tunelab predict` vacuous."""
    frame = english_dialogues(24)
    root.mkdir(parents=True, exist_ok=True)
    files = {"train": root / "train.csv", "test": root / "test.csv"}
    frame.to_csv(files["train"], index=False)
    frame.iloc[[5, 2, 7, 0, 3, 1, 6, 4]].drop(columns=["summary"]).to_csv(files["test"], index=False)
    model = tiny_model_dir(root / "models", "bart", head="seq2seq")
    run = _train(
        root,
        model,
        files,
        {"type": "summarization"},
        training={"max_steps": 40, "learning_rate": 5e-3},
        inference={"batch_size": 8, "generation": {"max_new_tokens": 12, "min_new_tokens": 6}},
    )
    out = root / "predicted.csv"
    invoke("predict", str(run), "--input", str(files["test"]), "--output", str(out))
    return {"run": run, "rows": pd.read_csv(files["test"]), "predicted": pd.read_csv(out, keep_default_na=False)}


DIALOGUES = [
    ("#Person1#: where is my parcel? #Person2#: it has not arrived yet", "the parcel has not arrived"),
    ("#Person1#: please reset my password #Person2#: I cannot log in", "reset my password"),
    ("#Person1#: my card was charged twice #Person2#: for one order", "the card was charged twice"),
    ("#Person1#: I want to cancel my subscription #Person2#: today", "cancel my subscription today"),
]


def english_dialogues(n: int) -> pd.DataFrame:
    rows = [{"id": f"d{i:03d}", "dialogue": d, "summary": s} for i in range(n) for d, s in [DIALOGUES[i % 4]]]
    return pd.DataFrame(rows)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(base: str, timeout_s: float = 120.0, process: Any = None) -> None:
    """Poll GET /ready (bounded); fail at once when the model failed to load or the process died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode} before it was ready")
        try:
            ready = httpx.get(f"{base}/ready", timeout=5)
            if ready.status_code == 200:
                return
            health = httpx.get(f"{base}/health", timeout=5)
            assert health.status_code == 200, health.text
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{base} not ready after {timeout_s} s")


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """Run `app` with uvicorn on a free 127.0.0.1 port in a thread; yields the base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base)
        yield base
    finally:
        server.should_exit = True
        thread.join(30)
        assert not thread.is_alive(), "server did not stop"
