"""`tunelab serve`: real HTTP on 127.0.0.1 against tiny trained runs (classification, summarization).

Answers equal `tunelab predict`'s on the same rows; concurrent callers get their own answers
(in fewer model batches than requests); every bad input is a 4xx naming the field and the server
keeps serving; a full queue is 503 + Retry-After; a model exception is 500 for its batch only;
the API key; SIGTERM with requests in flight (the CLI in a subprocess) finishes them and exits 0.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from serve_support import classification_run, free_port, serving, summarization_run, wait_ready
from tunelab.config.schema import ServeConfig
from tunelab.errors import ConfigError
from tunelab.serve.server import build_app, resolve_settings

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


@pytest.fixture(scope="module")
def cls(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve_cls")
    with pytest.MonkeyPatch.context() as mp:
        for k, v in OFFLINE.items():
            mp.setenv(k, v)
        mp.setenv("HF_HOME", str(root / "hf_home"))
        yield classification_run(root)


@pytest.fixture(scope="module")
def summ(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve_summ")
    with pytest.MonkeyPatch.context() as mp:
        for k, v in OFFLINE.items():
            mp.setenv(k, v)
        mp.setenv("HF_HOME", str(root / "hf_home"))
        yield summarization_run(root)


def app_for(run: Path, **settings):
    return build_app(run, [], None, ServeConfig(**settings))


def post(base: str, body, **kw) -> httpx.Response:
    return httpx.post(f"{base}/v1/predict", json=body, timeout=60, **kw)


# ---------------------------------------------------------------------------------- correctness
def test_classification_answers_equal_tunelab_predict(cls):
    rows, expected = cls["rows"], cls["predicted"]
    assert expected["prediction"].nunique() > 1, "the tiny run should have learned more than one label"
    with serving(app_for(cls["run"])) as base:
        inputs = [{"text": t, "id": i} for t, i in zip(rows["text"], rows["id"])]
        got = post(base, {"inputs": inputs}).json()["predictions"]
        meta = httpx.get(f"{base}/v1/metadata", timeout=10).json()
    assert [p["id"] for p in got] == rows["id"].tolist()  # input order
    assert [p["label"] for p in got] == expected["prediction"].tolist()
    assert [p["probability"] for p in got] == expected["probability"].tolist()
    for j in (1, 2, 3):
        assert [p["top_k"][j - 1]["label"] for p in got] == expected[f"top{j}_label"].tolist()
        assert [p["top_k"][j - 1]["probability"] for p in got] == expected[f"top{j}_prob"].tolist()
    assert meta["task"] == "classification" and meta["labels"] == ["billing", "login", "shipping"]
    assert meta["run_id"] == cls["run"].name and meta["max_length"] == 48
    assert meta["model"]["model_type"] == "bert" and meta["versions"]["torch"]


def test_concurrent_callers_get_their_own_answers_in_shared_batches(cls):
    rows, expected = cls["rows"], cls["predicted"]
    with serving(app_for(cls["run"], max_wait_ms=200, max_batch_size=32)) as base:

        def one(i: int) -> dict:
            return post(base, {"inputs": [rows["text"][i]]}).json()["predictions"][0]

        with concurrent.futures.ThreadPoolExecutor(len(rows)) as pool:
            got = list(pool.map(one, range(len(rows))))
        metrics = httpx.get(f"{base}/metrics", timeout=10).text
    assert [p["label"] for p in got] == expected["prediction"].tolist()
    # other batch neighbours change float rounding in the last digit at most
    assert [p["probability"] for p in got] == pytest.approx(expected["probability"].tolist(), abs=2e-6)
    batches = _metric(metrics, "tunelab_batch_size_count")
    assert _metric(metrics, "tunelab_batch_size_sum") == len(rows)  # (the warm-up bypasses the queue)
    assert batches < len(rows), "requests were not batched together"
    assert _metric(metrics, 'tunelab_requests_total{endpoint="/v1/predict",status="200"}') == len(rows)


def test_summarization_answers_equal_tunelab_predict_and_take_overrides(summ):
    rows, expected = summ["rows"], summ["predicted"]
    assert any(expected["prediction"]), "the tiny summarizer should generate some text"
    with serving(app_for(summ["run"], max_new_tokens_limit=16, max_num_beams=2)) as base:
        got = post(base, {"inputs": rows["dialogue"].tolist()}).json()["predictions"]
        short = post(base, {"inputs": rows["dialogue"].tolist(), "parameters": {"max_new_tokens": 6}})
        too_long = post(base, {"inputs": ["hello"], "parameters": {"max_new_tokens": 17}})
        too_many_beams = post(base, {"inputs": ["hello"], "parameters": {"num_beams": 3}})
        bad_value = post(base, {"inputs": ["hello"], "parameters": {"temperature": -1}})
        meta = httpx.get(f"{base}/v1/metadata", timeout=10).json()
    assert [p["text"] for p in got] == expected["prediction"].tolist()
    assert short.status_code == 200
    short_texts = [p["text"] for p in short.json()["predictions"]]
    assert short_texts != [p["text"] for p in got]
    assert all(len(s) <= len(t) for s, t in zip(short_texts, [p["text"] for p in got]))
    assert (too_long.status_code, _field(too_long)) == (422, "parameters.max_new_tokens")
    assert (too_many_beams.status_code, _field(too_many_beams)) == (422, "parameters.num_beams")
    assert (bad_value.status_code, _field(bad_value)) == (422, "parameters.temperature")
    assert meta["task"] == "summarization" and meta["generation"]["max_new_tokens"] == 12
    assert meta["input_columns"] == ["dialogue"]


# ----------------------------------------------------------------------------------- bad input
BAD = [
    ("malformed JSON", b'{"inputs": [', {"content-type": "application/json"}, 400, "body"),
    ("not JSON", b"inputs=hello", {"content-type": "application/x-www-form-urlencoded"}, 415, "content-type"),
    ("body not an object", b'["a"]', None, 422, "body"),
    ("inputs missing", b'{"input": ["a"]}', None, 422, "inputs"),
    ("inputs not a list", b'{"inputs": "a"}', None, 422, "inputs"),
    ("empty list", b'{"inputs": []}', None, 422, "inputs"),
    ("wrong item type", b'{"inputs": ["ok", 3]}', None, 422, "inputs[1]"),
    ("empty text", b'{"inputs": ["ok", "  "]}', None, 422, "inputs[1]"),
    ("missing column", b'{"inputs": [{"id": 1}]}', None, 422, "inputs[0].text"),
    ("column not text", b'{"inputs": [{"text": null}]}', None, 422, "inputs[0].text"),
    ("unknown column", b'{"inputs": [{"text": "a", "txt": "b"}]}', None, 422, "inputs[0].txt"),
    ("too many texts", json.dumps({"inputs": ["a"] * 5}).encode(), None, 413, "inputs"),
    ("too long text", json.dumps({"inputs": ["a" * 101]}).encode(), None, 413, "inputs[0]"),
    ("unknown parameter", b'{"inputs": ["a"], "parameters": {"beams": 2}}', None, 422, "parameters.beams"),
    ("top_k out of range", b'{"inputs": ["a"], "parameters": {"top_k": 4}}', None, 422, "parameters.top_k"),
    ("body too large", json.dumps({"inputs": ["a" * 100] * 4, "pad": "x" * 80_000}).encode(), None, 413, "body"),
]


def test_every_bad_input_is_a_4xx_naming_the_field_and_the_server_goes_on(cls):
    with serving(app_for(cls["run"], max_texts_per_request=4, max_chars_per_text=100)) as base:
        for name, body, headers, status, field in BAD:
            response = httpx.post(
                f"{base}/v1/predict", content=body, headers=headers or {"content-type": "application/json"}, timeout=30
            )
            assert response.status_code == status, (name, response.text)
            assert _field(response) == field, (name, response.text)
            assert response.json()["error"]["message"], name
        assert httpx.get(f"{base}/nowhere", timeout=10).status_code == 404
        assert post(base, {"inputs": ["where is my parcel"]}).status_code == 200


def test_full_queue_is_503_with_retry_after(cls):
    # A long batching wait keeps the first request's texts queued while the second arrives.
    with serving(app_for(cls["run"], max_queue=4, max_wait_ms=1500, max_batch_size=64)) as base:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            first = pool.submit(post, base, {"inputs": ["a b", "c d", "e f"]})
            _wait_for(lambda: _metric(httpx.get(f"{base}/metrics", timeout=10).text, "tunelab_queue_depth") == 3)
            refused = post(base, {"inputs": ["g h", "i j"]})
            assert first.result(timeout=60).status_code == 200
        assert post(base, {"inputs": ["g h", "i j"]}).status_code == 200  # room again
    assert refused.status_code == 503 and _field(refused) == "server"
    assert int(refused.headers["retry-after"]) >= 1


def test_model_exception_fails_only_its_batch(cls):
    from tunelab.serve.app import create_app
    from tunelab.serve.engine import Engine

    class Faulty(Engine):
        def predict_rows(self, rows, params):
            if any("boom" in r["text"] for r in rows):
                raise RuntimeError("injected fault")
            return super().predict_rows(rows, params)

    def load() -> Engine:
        e = Engine.load(cls["run"])
        return Faulty(e.run_dir, e.cfg, e.task, e.model, e.tokenizer, e.plan)

    app = create_app(load, ServeConfig(max_batch_size=1), None)
    with serving(app) as base:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(post, base, {"inputs": [t]}) for t in ("boom", "my parcel", "boom", "reset")]
            results = [f.result(timeout=60) for f in futures]
        after = post(base, {"inputs": ["where is my parcel"]})
    assert [r.status_code for r in results] == [500, 200, 500, 200]
    assert results[0].json()["error"]["type"] == "model_error" and "injected fault" in results[0].text
    assert after.status_code == 200


def test_batcher_groups_by_parameters_and_answers_each_caller_in_order():
    from tunelab.serve.batching import Batcher

    seen: list[tuple[list[str], dict]] = []

    def run_batch(rows, params):
        seen.append(([r["t"] for r in rows], params))
        return [{"echo": r["t"], "params": params} for r in rows]

    batcher = Batcher(run_batch, max_batch_size=3, max_wait_ms=300, max_queue=100)
    a = batcher.submit([{"t": "a1"}, {"t": "a2"}], {})
    b = batcher.submit([{"t": "b1"}], {"num_beams": 2}, key=(("num_beams", 2),))
    c = batcher.submit([{"t": "c1"}, {"t": "c2"}], {})
    batcher.start()
    try:
        assert [r["echo"] for r in a.result(timeout=30)] == ["a1", "a2"]
        assert b.result(timeout=30) == [{"echo": "b1", "params": {"num_beams": 2}}]
        assert [r["echo"] for r in c.result(timeout=30)] == ["c1", "c2"]
    finally:
        batcher.close(timeout=30)
    # oldest first, at most 3 texts, never mixing parameter sets
    assert seen == [(["a1", "a2", "c1"], {}), (["b1"], {"num_beams": 2}), (["c2"], {})]


# ------------------------------------------------------------------------------------- API key
def test_api_key_by_env_name_and_never_logged(cls, monkeypatch, capfd):
    secret = "k3y-" + "x" * 24
    monkeypatch.setenv("TL_SERVE_TEST_KEY", secret)
    with serving(app_for(cls["run"], api_key_env="TL_SERVE_TEST_KEY")) as base:
        missing = post(base, {"inputs": ["a"]})
        wrong = post(base, {"inputs": ["a"]}, headers={"Authorization": "Bearer nope"})
        bearer = post(base, {"inputs": ["a"]}, headers={"Authorization": f"Bearer {secret}"})
        header = post(base, {"inputs": ["a"]}, headers={"X-API-Key": secret})
        metrics = httpx.get(f"{base}/metrics", timeout=10)
        health = httpx.get(f"{base}/health", timeout=10)
    assert (missing.status_code, wrong.status_code, bearer.status_code, header.status_code) == (401, 401, 200, 200)
    assert _field(missing) == "authorization" and missing.headers["www-authenticate"] == "Bearer"
    assert metrics.status_code == 401 and health.status_code == 200  # probes need no key
    out, err = capfd.readouterr()
    assert secret not in out + err
    monkeypatch.delenv("TL_SERVE_TEST_KEY")
    with pytest.raises(ConfigError, match="TL_SERVE_TEST_KEY is not set"):
        app_for(cls["run"], api_key_env="TL_SERVE_TEST_KEY")
    with pytest.raises(ConfigError) as exc:
        app_for(cls["run"], api_key_env=secret)  # the key pasted where its NAME belongs
    assert secret not in str(exc.value)


def test_latest_name_serves_the_newest_run_of_a_config(cls):
    run = cls["run"]
    with serving(build_app(Path(f"latest:{run.parent}/serve"), [], None, ServeConfig())) as base:
        meta = httpx.get(f"{base}/v1/metadata", timeout=10).json()
    assert meta["run_id"] == run.name


def test_cli_flags_override_the_serve_section():
    base = ServeConfig(port=9000, max_batch_size=8)
    merged = resolve_settings(base, {"port": 9100, "max_batch_size": None, "workers": 2})
    assert (merged.port, merged.max_batch_size, merged.workers) == (9100, 8, 2)
    with pytest.raises(ConfigError, match="--max-batch-size"):
        resolve_settings(base, {"max_batch_size": 0})


# ------------------------------------------------------------------------------------ SIGTERM
def test_sigterm_guard_works_off_the_main_thread():
    # Run.serve may be called from a thread (notebooks, tests): signal.signal would raise there.
    import threading

    from tunelab.serve.server import _sigterm_returns

    errors: list[BaseException] = []

    def body() -> None:
        try:
            with _sigterm_returns():
                pass
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=body)
    thread.start()
    thread.join(10)
    assert errors == []


@pytest.mark.slow
def test_sigterm_finishes_requests_in_flight_and_exits_zero(cls, tmp_path):
    port = free_port()
    env = {**os.environ, **OFFLINE, "OMP_NUM_THREADS": "1", "PYTHONPATH": _src_path()}
    cmd = [sys.executable, "-m", "tunelab.cli", "serve", str(cls["run"]), "--port", str(port)]
    # Requests wait up to 3 s for their batch: they are in flight when SIGTERM arrives.
    cmd += ["--max-wait-ms", "3000", "--max-batch-size", "64"]
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 (closed below, after the process)
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process=proc)
        texts = cls["rows"]["text"].tolist()[:4]
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(post, base, {"inputs": [t]}) for t in texts]
            _wait_for(lambda: _metric(httpx.get(f"{base}/metrics", timeout=10).text, "tunelab_queue_depth") == 4)
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            with pytest.raises(httpx.TransportError):  # no longer accepting
                httpx.get(f"{base}/health", timeout=5)
            answers = [f.result(timeout=60) for f in futures]
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log.close()
    assert [a.status_code for a in answers] == [200] * 4
    expected = cls["predicted"]["prediction"].tolist()[:4]
    assert [a.json()["predictions"][0]["label"] for a in answers] == expected
    server_log = (tmp_path / "server.log").read_text(errors="replace")
    assert "Shutting down" in server_log
    assert "predicting" not in server_log  # no progress bar per request in the server's log


# ------------------------------------------------------------------------------------ helpers
def _field(response: httpx.Response) -> str:
    return response.json()["error"]["field"]


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or (("{" in name) and line.startswith(name)):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def _wait_for(condition, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def _src_path() -> str:
    src = str(Path(__file__).resolve().parents[1] / "src")
    return os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])
