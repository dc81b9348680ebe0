"""Benchmark 5: `tunelab serve` under 1, 8 and 32 concurrent clients vs offline `tunelab predict`.

On the demo run (`make demo`: all-MiniLM-L6-v2 fine-tuned on 10 intents) and its 300 test rows:
1. offline: the run loaded by the same code `tunelab predict` uses (inference/predict.py), and
   `predict_frame` over all rows at the run's inference.batch_size (length-ordered): texts/s;
   then one bare forward pass (tokenize + model, one row, no server) per row: p50/p99 ms.
   Measured 3 times before and 3 times after the server levels, medians reported (the CPU is
   shared: one timing of a second or two swings with other jobs' load);
2. `tunelab serve RUN` in a subprocess on 127.0.0.1 (default serve: settings), driven by 1, 8
   and 32 bounded concurrent clients (keep-alive HTTP/1.1 connections on asyncio, one text per
   request, each client sends its next request when the previous one answered): texts/s, p50/p99 latency, mean batch size (from
   the server's /metrics).
Everything runs with one torch thread (server and offline alike), one after the other.

Targets: at 32 clients the server reaches >= 0.8x the offline texts/s; at 1 client its p50
latency is within 20 ms of the bare forward pass's p50.

    .venv/bin/python benchmarks/bench_serve.py              # writes docs/benchmarks.md
    .venv/bin/python benchmarks/bench_serve.py --small      # smoke run, docs untouched
    .venv/bin/python benchmarks/bench_serve.py --run runs/demo/<ts>_intents-minilm
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import ROOT, add_threads_arg, load_note, stamp, verdict, write_section

DEMO_RUNS = ROOT / "runs" / "demo"
DEMO_ROWS = ROOT / "examples" / "data" / "generated" / "test_unlabelled.csv"
CLIENTS = (1, 8, 32)


def newest_demo_run() -> Path | None:
    runs = sorted(p for p in DEMO_RUNS.glob("*") if (p / "model").is_dir()) if DEMO_RUNS.is_dir() else []
    return runs[-1] if runs else None


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


# ------------------------------------------------------------------------------------ offline
def load_engine(run: Path):
    """The run loaded by the same code `tunelab predict` uses, warmed up."""
    from tunelab.serve.engine import Engine

    engine = Engine.load(run)
    engine.warm_up()
    return engine


def offline_once(engine, texts: list[str]) -> dict[str, Any]:
    """One measurement: offline texts/s, the in-process ceiling, bare forward times (ms)."""
    import pandas as pd
    import torch

    from tunelab.config.schema import ServeConfig
    from tunelab.inference.predict import predict_frame

    cfg, task, model, tok, plan = engine.cfg, engine.task, engine.model, engine.tokenizer, engine.plan
    frame = pd.DataFrame({"text": texts})
    t0 = time.perf_counter()
    predict_frame(task, model, tok, frame, cfg, plan)
    rate = len(texts) / (time.perf_counter() - t0)
    # The ceiling for a server whose callers send one text each: the same prediction code on
    # batches of max_batch_size texts in arrival order (no HTTP, no waiting, always full).
    size = ServeConfig().max_batch_size
    t0 = time.perf_counter()
    for start in range(0, len(texts), size):
        engine.predict_rows([{"text": t} for t in texts[start : start + size]], {})
    ceiling = len(texts) / (time.perf_counter() - t0)
    bare: list[float] = []
    with torch.inference_mode():
        for text in texts:
            t0 = time.perf_counter()
            enc = tok(text, truncation=True, max_length=cfg.data.max_length, return_tensors="pt")
            model(**enc).logits.float().cpu().numpy()
            bare.append((time.perf_counter() - t0) * 1000)
    return {"rate": rate, "ceiling": ceiling, "bare": bare}


def summarize_offline(reps: list[dict[str, Any]], batch: int) -> dict[str, Any]:
    """Medians over repeats measured before and after the server levels (the CPU is shared)."""
    from tunelab.config.schema import ServeConfig

    rates = [r["rate"] for r in reps]
    bare = [ms for r in reps for ms in r["bare"]]
    return {
        "rate": statistics.median(rates),
        "rate_range": (min(rates), max(rates)),
        "ceiling": statistics.median(r["ceiling"] for r in reps),
        "ceiling_batch": ServeConfig().max_batch_size,
        "batch": batch,
        "bare_p50": pct(bare, 0.5),
        "bare_p99": pct(bare, 0.99),
        "reps": len(reps),
    }


# ------------------------------------------------------------------------------------- server
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(run: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "tunelab.cli", "serve", str(run), "--port", str(port)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_ready(base: str, proc: subprocess.Popen, timeout_s: float = 180) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/ready", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("server not ready in time")


def batch_counts(base: str) -> tuple[float, float]:
    import httpx

    values = {}
    for line in httpx.get(f"{base}/metrics", timeout=10).text.splitlines():
        for name in ("tunelab_batch_size_sum", "tunelab_batch_size_count"):
            if line.startswith(name + " "):
                values[name] = float(line.split()[1])
    return values["tunelab_batch_size_sum"], values["tunelab_batch_size_count"]


class Connection:
    """One keep-alive HTTP/1.1 connection on asyncio streams: the load generator's client.

    Why not httpx here: measured on this machine, an httpx.AsyncClient spends ~3 ms of CPU per
    request, more than the server's own overhead, and on 2 shared cores the client's CPU is taken
    from the server being measured. Sending pre-encoded requests and reading Content-Length
    bodies costs a fraction of that; the tests use httpx, where speed does not matter.
    """

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        assert self.reader is not None
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        return int(status_line.split()[1]), await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def drive(port: int, bodies: list[bytes], clients: int, requests: int) -> dict[str, float]:
    """`clients` loops, each sending one request and awaiting its answer before the next; `requests` in all."""
    latencies: list[float] = []
    conns = [Connection("127.0.0.1", port) for _ in range(clients)]

    async def client(conn: Connection, indices) -> None:
        for i in indices:
            t0 = time.perf_counter()
            status, text = await conn.post("/v1/predict", bodies[i % len(bodies)])
            latencies.append((time.perf_counter() - t0) * 1000)
            if status != 200:
                raise SystemExit(f"request failed: {status} {text[:200]!r}")

    warm = iter(range(2 * clients))  # open every connection and warm the path, untimed
    await asyncio.gather(*(client(c, warm) for c in conns))
    latencies.clear()
    todo = iter(range(requests))
    t0 = time.perf_counter()
    await asyncio.gather(*(client(c, todo) for c in conns))
    wall = time.perf_counter() - t0
    for c in conns:
        c.close()
    return {"rate": requests / wall, "p50": pct(latencies, 0.5), "p99": pct(latencies, 0.99)}


def serve_levels(run: Path, texts: list[str], passes: int) -> dict[int, dict[str, float]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_server(run, port)
    results = {}
    bodies = [json.dumps({"inputs": [t]}).encode() for t in texts]
    try:
        wait_ready(base, proc)
        for clients in CLIENTS:
            requests = len(texts) // 2 if clients == 1 else len(texts) * passes
            before = batch_counts(base)
            results[clients] = asyncio.run(drive(port, bodies, clients, requests))
            after = batch_counts(base)
            # the warm-up requests are in the delta too; they are few and batch like the rest
            results[clients]["mean_batch"] = (after[0] - before[0]) / max(1.0, after[1] - before[1])
            results[clients]["requests"] = requests
            print(f"{clients:>3} clients: {results[clients]}", flush=True)
    finally:
        proc.terminate()
        proc.wait(60)
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, default=None, help="run directory (default: the newest demo run)")
    ap.add_argument("--small", action="store_true", help="60 rows, one pass; docs untouched")
    add_threads_arg(ap)
    args = ap.parse_args()
    import pandas as pd
    import torch

    threads = args.threads or 1  # one thread unless asked: the server gets the same number
    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    run = args.run or newest_demo_run()
    if run is None or not DEMO_ROWS.is_file():
        print("no demo run: run `make demo` first (or pass --run and keep the demo data)", file=sys.stderr)
        return 2
    texts = pd.read_csv(DEMO_ROWS)["text"].astype(str).tolist()
    texts = texts[:60] if args.small else texts
    passes = 1 if args.small else 3
    load = load_note()
    engine = load_engine(run)
    reps = [offline_once(engine, texts) for _ in range(3)]
    levels = serve_levels(run, texts, passes)
    reps += [offline_once(engine, texts) for _ in range(3)]
    off = summarize_offline(reps, engine.cfg.inference.batch_size)
    print(f"offline: { {k: v for k, v in off.items()} }", flush=True)
    body = table(run, texts, off, levels, load)
    print(body)
    if not args.small:
        write_section("serve", body)
    return 0


def table(run: Path, texts: list[str], off: dict, levels: dict, load: str) -> str:
    rows = [
        f"| offline `predict_frame` (what `tunelab predict` runs), batch {off['batch']}; median of {off['reps']} "
        f"(range {off['rate_range'][0]:,.0f}-{off['rate_range'][1]:,.0f}) | - | {len(texts)} rows "
        f"| {off['rate']:,.1f} | - | - | {off['batch']} |",
        f"| in-process ceiling: the same code on {off['ceiling_batch']}-text batches in arrival order, no HTTP | - "
        f"| {len(texts)} rows | {off['ceiling']:,.1f} | - | - | {off['ceiling_batch']} |",
        f"| bare forward pass, one row (tokenize + model) | - | {len(texts)} rows | {1000 / off['bare_p50']:,.1f} "
        f"| {off['bare_p50']:.1f} | {off['bare_p99']:.1f} | 1 |",
    ]
    for clients, r in levels.items():
        rows.append(
            f"| `tunelab serve`, 1 text per request | {clients} | {int(r['requests'])} requests | {r['rate']:,.1f} "
            f"| {r['p50']:.1f} | {r['p99']:.1f} | {r['mean_batch']:.1f} |"
        )
    ratio = levels[32]["rate"] / off["rate"]
    gap = levels[1]["p50"] - off["bare_p50"]
    return (
        f"### Serving: `tunelab serve` vs offline prediction\n\n{stamp(load)}\n\n"
        f"Run: `{run.name}` (the demo run); rows: the demo's {len(texts)} test texts. Server: default `serve:` "
        "settings (max_batch_size 32, max_wait_ms 5), one uvicorn worker, the same torch threads as offline; clients: keep-alive "
        "HTTP/1.1 connections on asyncio in the benchmark process, on the same 2 cores.\n\n"
        "| mode | clients | work | texts/s | p50 ms | p99 ms | mean batch |\n|---|---|---|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n\n"
        + verdict(ratio, 0.8, "server texts/s at 32 clients / offline texts/s")
        + f" (the in-process ceiling above is {off['ceiling'] / off['rate']:.2f}x offline; the server reaches "
        + f"{levels[32]['rate'] / off['ceiling']:.2f}x of it)\n"
        + verdict(gap, 20.0, "server p50 at 1 client minus bare forward p50 (ms)", higher=False)
        + "\n"
    )


if __name__ == "__main__":
    sys.exit(main())
