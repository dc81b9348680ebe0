"""Run every benchmark in turn (`make bench`): training, tokenization, prediction, serving.

Each script replaces its own section of docs/benchmarks.md. They run one after another, never
side by side: on a small CPU two benchmarks at once would each measure the other.

    .venv/bin/python benchmarks/run_all.py                # full runs (~35 min on 2 cores)
    .venv/bin/python benchmarks/run_all.py --small        # smoke runs (~1 min), docs untouched
    .venv/bin/python benchmarks/run_all.py --threads 1    # on a CPU shared with other jobs
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = (
    "bench_training.py",
    "bench_tokenize.py",
    "bench_predict.py",
    "bench_checkpoint_hash.py",
    "bench_lora.py",
    "bench_serve.py",  # needs the demo run: `make demo` first
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true", help="smoke runs: tiny sizes, docs not written")
    ap.add_argument("--threads", type=int, default=None, help="torch threads, passed to every script")
    args = ap.parse_args()
    extra = (["--small"] if args.small else []) + (["--threads", str(args.threads)] if args.threads else [])
    failed = []
    for script in SCRIPTS:
        print(f"== {script} {' '.join(extra)}", flush=True)
        if subprocess.run([sys.executable, str(HERE / script), *extra], cwd=HERE).returncode != 0:
            failed.append(script)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
