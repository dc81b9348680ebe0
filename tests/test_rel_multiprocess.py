"""Several processes (DDP over gloo on CPU): a failing main process, a signal to one rank, resume.

The races these tests pin down never show in one process: a main process that fails while the
others wait for it, a signal that reaches one rank only, a checkpoint published before every
rank wrote its RNG state. `tunelab train` runs under `accelerate launch` exactly as users run it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rel_support import assert_same_run, make_project

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_CFG = ROOT / "examples" / "accelerate" / "ddp_cpu_2proc.yaml"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(ROOT / "src") + os.pathsep + str(ROOT / "tests"),
        "TUNELAB_FAULT": "",
        "TUNELAB_FAULT_RANK": "",
        "TOKENIZERS_PARALLELISM": "false",
        "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
        **extra,
    }


# ------------------------------------------------------------ main_process_first, two bare ranks
SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from tunelab.errors import DataError
    from tunelab.training import distributed

    mode, marker = sys.argv[1], Path(sys.argv[2])
    try:
        with distributed.main_process_first():
            if distributed.is_main_process():
                time.sleep(0.5)  # the other rank is waiting by now
                if mode == "tunelab":
                    raise DataError("train.csv:3:label: empty label", hint="fill row 3")
                if mode == "crash":
                    raise RuntimeError("disk vanished")
                marker.write_text("main was here")
            else:
                print("other saw:", marker.read_text(), flush=True)
    except Exception as exc:
        print(f"rank {distributed.is_main_process() and 0 or 1} failed: {type(exc).__name__}: {exc}", flush=True)
        sys.exit(3)
    print("block done", flush=True)
    import torch.distributed as dist
    dist.barrier()
    dist.destroy_process_group()  # a clean exit: gloo aborts at teardown when a peer left first
    """
)


def _two_bare_ranks(tmp_path: Path, mode: str) -> list[subprocess.CompletedProcess]:
    """Two processes wired like torchrun wires them (env only, no launcher that kills the rest)."""
    port = str(_free_port())
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SCRIPT, mode, str(tmp_path / "marker")],
            env=_env(RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=port),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in (0, 1)
    ]
    out = []
    for p in procs:
        try:
            stdout, stderr = p.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail(f"a rank hung waiting for the failed main process ({mode})")
        out.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return out


def test_main_process_first_runs_main_first_then_the_others(tmp_path):
    main, other = _two_bare_ranks(tmp_path, "ok")
    assert main.returncode == other.returncode == 0, main.stderr[-2000:] + other.stderr[-2000:]
    assert "other saw: main was here" in other.stdout


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("tunelab", "DataError: train.csv:3:label: empty label (hint: fill row 3)"),
        ("crash", "TunelabError: the main process failed: RuntimeError: disk vanished"),
    ],
)
def test_failing_main_process_releases_the_others_with_its_error(tmp_path, mode, expected):
    start = time.monotonic()
    main, other = _two_bare_ranks(tmp_path, mode)
    assert main.returncode == other.returncode == 3, main.stderr[-2000:] + other.stderr[-2000:]
    assert f"rank 1 failed: {expected}" in other.stdout, other.stdout + other.stderr[-2000:]
    assert time.monotonic() - start < 60  # promptly, not at the collective timeout


# ------------------------------------------------------------------- tunelab train, 2 processes
def _launch(cfg: Path, *args: str, env: dict[str, str] | None = None, timeout: int = 600):
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(LAUNCH_CFG),
        "--main_process_port",
        str(_free_port()),
        "-m",
        "tunelab.cli",
        "train",
        str(cfg),
        "--set",
        "training.per_device_train_batch_size=2",  # 2 processes x 2 = the project's batch of 4
        *args,
    ]
    return subprocess.run(cmd, env=_env(**(env or {})), capture_output=True, text=True, timeout=timeout)


def _flat(res) -> str:
    return " ".join((res.stdout + res.stderr).split())


@pytest.mark.slow
def test_failure_in_the_main_process_stops_every_rank_with_its_error(tmp_path):
    cfg = make_project(tmp_path)
    start = time.monotonic()
    res = _launch(
        cfg, "--run-dir", str(tmp_path / "run"), env={"TUNELAB_FAULT": "raise@tokenize", "TUNELAB_FAULT_RANK": "0"}
    )
    assert res.returncode != 0
    # The other rank says why: the main process's own error, not a lost connection or a timeout.
    assert "the main process failed: RuntimeError: injected fault at tokenize" in _flat(res), res.stderr[-4000:]
    assert time.monotonic() - start < 240


@pytest.mark.slow
def test_sigterm_to_one_rank_stops_both_with_every_rng_state_and_resumes_bit_identically(tmp_path):
    cfg = make_project(tmp_path)
    base, run = tmp_path / "runs" / "base", tmp_path / "runs" / "interrupted"
    res = _launch(cfg, "--run-dir", str(base))
    assert res.returncode == 0, res.stderr[-4000:]

    # SIGTERM reaches rank 1 only (as from a scheduler that signals one process), after step 4.
    res = _launch(cfg, "--run-dir", str(run), env={"TUNELAB_FAULT": "sigterm@step:4", "TUNELAB_FAULT_RANK": "1"})
    assert res.returncode != 0
    out = _flat(res)
    assert (
        "training interrupted by SIGTERM" in out and f"training interrupted by {'a signal to another process'}" in out
    )
    ckpt = run / "checkpoints" / "checkpoint-4"
    manifest = json.loads((ckpt / "tunelab_manifest.json").read_text())
    assert manifest["world_size"] == 2
    assert {"rng_state_0.pth", "rng_state_1.pth"} <= set(manifest["files"])
    assert not (run / "model").exists()

    res = _launch(cfg, "--run-dir", str(run), "--resume")
    assert res.returncode == 0, res.stderr[-4000:]
    assert "from checkpoint-4" in _flat(res)
    assert_same_run(base, run)
