"""`tunelab baseline` against a local OpenAI-compatible server (http.server on 127.0.0.1).

The server answers by what the user message contains: rows marked RATE get one 429 first, SLOW
rows stall past the client timeout once, BROKEN rows always get a non-JSON reply, DOWN rows a
500 every time. Everything else is answered with the label named in the text.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tunelab.cli import app
from tunelab.experiments.baseline import map_label
from tunelab.experiments.llm_client import ApiError, ChatClient, parse_reply, retry_after

KEY = "sk-test-PLANTEDKEY-0123456789abcdef"
LABELS = ["billing", "delivery", "login"]


class Server:
    def __init__(self):
        self.calls: list[dict] = []
        self.seen: dict[str, int] = {}
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                text = body["messages"][-1]["content"]
                with outer.lock:
                    outer.calls.append({"path": self.path, "auth": self.headers.get("Authorization"), "text": text})
                    n = outer.seen[text] = outer.seen.get(text, 0) + 1
                if "RATE" in text and n == 1:
                    return self._send(429, b'{"error": "slow down"}', {"Retry-After": "0"})
                if "SLOW" in text and n == 1:
                    time.sleep(1.5)
                if "DOWN" in text:
                    return self._send(503, b'{"error": "overloaded"}')
                if "BROKEN" in text:
                    return self._send(200, b"<html>gateway error</html>")
                label = next((lab for lab in LABELS if lab in text.split("Text:")[-1]), "no idea")
                reply = {
                    "choices": [{"message": {"role": "assistant", "content": f" {label.capitalize()}."}}],
                    "usage": {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13},
                }
                self._send(200, json.dumps(reply).encode())

            def _send(self, code, payload, headers=None):
                try:
                    self.send_response(code)
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    with Server() as s:
        yield s


def _project(tmp_path: Path, url: str, extra_rows: list[tuple[str, str]] = (), tracking: str = "none") -> Path:
    rows = ["id,text,label"]
    texts = [
        ("my billing question RATE", "billing"),
        ("delivery is late SLOW", "delivery"),
        ("login fails", "login"),
        ("billing again", "billing"),
        ("delivery where", "delivery"),
        ("a login BROKEN", "login"),
        *extra_rows,
    ]
    rows += [f"{i},{t},{lab}" for i, (t, lab) in enumerate(texts)]
    (tmp_path / "val.csv").write_text("\n".join(rows) + "\n")
    train = ["id,text,label"] + [f"t{i},{lab} example {i},{lab}" for i, lab in enumerate(LABELS * 3)]
    (tmp_path / "train.csv").write_text("\n".join(train) + "\n")
    cfg = {
        "name": "base",
        "output_dir": str(tmp_path / "runs"),
        "task": {"type": "classification"},
        "data": {"train_file": str(tmp_path / "train.csv"), "validation_file": str(tmp_path / "val.csv")},
        "model": {"name_or_path": "unused"},
        "tracking": tracking,
        "baseline": {
            "base_url": url,
            "model": "solar-mini",
            "api_key_env": "TEST_LLM_API_KEY",
            "concurrency": 3,
            "timeout_s": 0.5,
            "max_retries": 2,
            "backoff_s": 0.01,
            "max_backoff_s": 0.05,
            "num_train_examples": 2,
            "examples": [{"input": "refund please", "output": "billing"}],
        },
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_baseline_retries_caches_scores_and_never_leaks_the_key(server, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_LLM_API_KEY", KEY)
    cfg = _project(tmp_path, server.url, tracking="mlflow")  # MLflow store: tmp_path/mlflow.db (conftest)
    runner = CliRunner()
    result = runner.invoke(app, ["baseline", str(cfg)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "runs" / "baseline-base"
    res = json.loads((out / "baseline.json").read_text())
    assert res["rows"] == 6 and res["scored_rows"] == 5 and res["failed_rows"] == 1
    assert "malformed reply" in res["failures"][0]["error"] and res["failures"][0]["id"] == "5"
    assert res["scores"]["accuracy"] == 1.0  # RATE (429 then ok) and SLOW (timeout then ok) both answered
    assert (
        server.seen[
            "Classify the text into exactly one of these labels: billing, delivery, login.\n"
            "Answer with the label only.\n\nText: my billing question RATE"
        ]
        == 2
    )
    assert res["usage"]["api_calls"] == 5 and res["usage"]["prompt_tokens"] == 55
    assert all(c["auth"] == f"Bearer {KEY}" and c["path"] == "/v1/chat/completions" for c in server.calls)
    calls_first = len(server.calls)
    # Rerun: every answered row comes from the cache; only the malformed one is asked again.
    result = runner.invoke(app, ["baseline", str(cfg)])
    assert result.exit_code == 0, result.output
    res2 = json.loads((out / "baseline.json").read_text())
    assert res2["usage"]["cached_responses"] == 5 and res2["usage"]["api_calls"] == 0
    assert len(server.calls) == calls_first + 1 and res2["scores"] == res["scores"]
    # The planted key is in no file we wrote, and not in the console output.
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY not in path.read_text(errors="ignore"), path
    assert KEY not in result.output
    assert "TEST_LLM_API_KEY" in (out / "config.yaml").read_text()  # the variable's name is kept
    db = (tmp_path / "mlflow.db").read_bytes()
    assert b"solar-mini" in db and b"final_validation_macro_f1" in db and KEY.encode() not in db


def test_client_gives_up_on_persistent_5xx_with_clear_error(server):
    client = ChatClient(server.url, KEY, timeout_s=2, max_retries=2, backoff_s=0.0)
    with pytest.raises(ApiError, match=r"gave up after 3 attempts; last error: HTTP 503"):
        client.complete({"model": "m", "messages": [{"role": "user", "content": "DOWN"}]})
    assert server.seen["DOWN"] == 3


def test_client_does_not_retry_auth_errors_and_scrubs_the_key(tmp_path):
    class Deny(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            payload = f'{{"error": "invalid key {self.headers.get("Authorization")}"}}'.encode()
            self.send_response(401)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Deny)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        client = ChatClient(f"http://127.0.0.1:{httpd.server_address[1]}/v1", KEY, max_retries=3, backoff_s=0.0)
        with pytest.raises(ApiError) as err:
            client.complete({"model": "m", "messages": []})
        assert "HTTP 401" in str(err.value) and "api_key_env" in str(err.value) and KEY not in str(err.value)
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_missing_or_pasted_key_is_a_config_error(server, tmp_path, monkeypatch):
    cfg = _project(tmp_path, server.url)
    monkeypatch.delenv("TEST_LLM_API_KEY", raising=False)
    result = CliRunner().invoke(app, ["baseline", str(cfg)])
    assert result.exit_code == 2 and "TEST_LLM_API_KEY is not set" in result.output
    result = CliRunner().invoke(app, ["baseline", str(cfg), "--set", f"baseline.api_key_env={KEY}"])
    assert result.exit_code == 2 and "NAME of an environment variable" in result.output
    assert KEY not in result.output
    assert not server.calls


def test_reply_parsing_label_mapping_and_retry_after():
    assert parse_reply(b'{"choices":[{"message":{"content":"hi"}}],"usage":{"total_tokens":3}}') == (
        "hi",
        {"total_tokens": 3},
    )
    with pytest.raises(ApiError, match="no choices"):
        parse_reply(b'{"choices": []}')
    with pytest.raises(ApiError, match="not JSON"):
        parse_reply(b"oops")
    assert map_label(" Delivery.", LABELS) == "delivery"
    assert map_label("I think it is about login, not billing", LABELS) == "login"
    assert map_label("no clue", LABELS) == "<unmapped>"
    assert retry_after("3", 60) == 3.0 and retry_after("999", 10) == 10 and retry_after(None, 5) is None
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 10) == 0.0
