"""One experiment run = one `tunelab train` subprocess: isolation, logs, and why it failed.

A child process is the isolation unit: an out-of-memory, a segfault in a CUDA kernel, an import
error of an optional dependency or a hung collective ends that run only. The parent never imports
torch for a run.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ERROR_FILE_ENV = "TUNELAB_ERROR_FILE"  # cli._friendly writes {class, message, hint} here
TAIL_LINES = 40
_EXC_LINE = re.compile(
    r"^([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit|Warning)\w*|KeyboardInterrupt|Killed)(?::\s*(.*))?$"
)
_CLI_ERROR = re.compile(r"^error:\s*(.+)$")


@dataclass
class RunOutcome:
    status: str  # "ok" | "failed"
    returncode: int | None
    duration_s: float
    error: dict[str, Any] | None
    log_tail: str


def train_argv(config_path: Path, run_dir: Path) -> list[str]:
    # `-m tunelab.cli`, not the console script: the same interpreter/venv as the parent, always.
    return [sys.executable, "-m", "tunelab.cli", "train", str(config_path), "--run-dir", str(run_dir)]


def run_child(
    argv: list[str], log_path: Path, error_file: Path, gpu: int | None = None, timeout_s: float | None = None
) -> RunOutcome:
    """Run `argv` with stdout+stderr into `log_path`; classify the outcome."""
    env = dict(os.environ)
    env[ERROR_FILE_ENV] = str(error_file)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("COLUMNS", "200")  # rich wraps at the terminal width; keep error lines whole in logs
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(gpu)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    error_file.unlink(missing_ok=True)
    start = time.monotonic()
    timed_out = False
    with open(log_path, "ab") as log:
        log.write(f"$ {' '.join(argv)}\n".encode())
        log.flush()
        # New session: a timeout kills the run's whole process group (dataloader workers too).
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            code = proc.wait()
    duration = time.monotonic() - start
    tail = log_tail(log_path)
    if code == 0:
        return RunOutcome("ok", code, duration, None, tail)
    error = classify_failure(code, tail, error_file, timed_out, timeout_s)
    return RunOutcome("failed", code, duration, error, tail)


def log_tail(path: Path, lines: int = TAIL_LINES) -> str:
    if not path.is_file():
        return ""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - 64_000))
        text = fh.read().decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def classify_failure(
    code: int | None, tail: str, error_file: Path, timed_out: bool = False, timeout_s: float | None = None
) -> dict[str, str]:
    """{class, message, hint?} from the child's error file, else its log, else its exit status."""
    if timed_out:
        return {"class": "Timeout", "message": f"run exceeded timeout_s={timeout_s:g} and was killed"}
    if error_file.is_file():
        try:
            data = json.loads(error_file.read_text(encoding="utf-8"))
            return {k: str(v) for k, v in data.items() if v is not None}
        except json.JSONDecodeError:
            pass
    parsed = parse_error_line(tail)
    if parsed:
        return parsed
    if code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        why = " (the kernel OOM killer sends SIGKILL when host memory runs out)" if -code == signal.SIGKILL else ""
        return {"class": f"Killed({name})", "message": f"the run was killed by signal {name}{why}"}
    return {"class": "UnknownError", "message": f"exited with status {code}; see the log tail"}


def parse_error_line(tail: str) -> dict[str, str] | None:
    """The last exception line (`torch.OutOfMemoryError: CUDA out of memory...`) or CLI `error:` line."""
    exc_found: dict[str, str] | None = None
    cli_found: dict[str, str] | None = None
    for line in tail.splitlines():
        stripped = line.strip()
        m = _CLI_ERROR.match(stripped)
        if m:
            cli_found = {"class": "TunelabError", "message": m.group(1)}
            continue
        m = _EXC_LINE.match(stripped)
        if m and not m.group(1).endswith("Warning"):
            exc_found = {"class": m.group(1).rsplit(".", 1)[-1], "message": (m.group(2) or "").strip()}
    return cli_found or exc_found


def explaining_finding(run_dir: Path, error: dict[str, str] | None) -> dict[str, Any] | None:
    """The doctor finding that explains a failure: an error-severity one, preferring the error's topic."""
    findings = load_findings(run_dir)
    if not findings:
        return None
    errors = [f for f in findings if str(f.get("severity", "")).lower() in ("error", "fatal", "critical")]
    text = f"{(error or {}).get('class', '')} {(error or {}).get('message', '')}".lower()
    topic = "memory" if ("memory" in text or "oom" in text) else None
    if topic:
        related = [f for f in findings if topic in json.dumps(f).lower() and f in errors + findings]
        if related:
            return related[0]
    return errors[0] if errors else None


def load_findings(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "preflight.json"
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return []
    items = data.get("findings", []) if isinstance(data, dict) else data
    return [f for f in items if isinstance(f, dict)] if isinstance(items, list) else []
