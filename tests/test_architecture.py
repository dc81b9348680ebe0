"""The house rules of docs/architecture.md that a grep or a contract can check.

- the import-linter floors and the no-cycles contract hold;
- only tunelab/ui.py constructs a rich Console or Progress;
- every task implements everything the Task protocol declares, and its primary metric is the
  config section's, which is also a key of the answer-list scores ensembles and baselines use.
"""

from __future__ import annotations

import inspect
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from data_support import make_cfg
from tunelab.evaluation.scoring import score
from tunelab.protocols import ClassifierTask, Task

SRC = Path(__file__).resolve().parents[1] / "src" / "tunelab"
TASKS = {
    "classification": {"type": "classification", "labels": ["a", "b"]},
    "summarization": {"type": "summarization"},
    "sft": {"type": "sft"},
    "sft with a label set": {"type": "sft", "label_set": ["yes", "no"]},
}


def test_import_contracts_hold():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    if not Path(exe).exists():
        pytest.skip("import-linter is not installed (pip install -r requirements.txt)")
    root = SRC.parents[1]
    result = subprocess.run([exe], cwd=root, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_only_ui_builds_consoles_and_progress_bars():
    pattern = re.compile(r"\b(Console|Progress)\(")
    offenders = [
        f"{path.relative_to(SRC)}:{i}"
        for path in SRC.rglob("*.py")
        if path.name != "ui.py"
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == [], "construct consoles/progress bars through tunelab.ui"


def _protocol_members(proto: type) -> set[str]:
    own = set()
    for klass in proto.__mro__:
        if klass in (object,) or klass.__name__ in ("Protocol", "Generic"):
            continue
        own |= {n for n in vars(klass) if not n.startswith("_")}
        own |= set(getattr(klass, "__annotations__", {}))
    return own


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_implements_the_protocol(name, tmp_path):
    from tunelab.tasks.base import task_from_config

    cfg = make_cfg(tmp_path, task=TASKS[name])
    task = task_from_config(cfg, ["a", "b"] if name == "classification" else None)
    proto = ClassifierTask if not cfg.task.generative else Task
    # getattr_static: a generative task's task_kind reads the model's config, which this test has not got.
    missing = [m for m in sorted(_protocol_members(proto)) if not _has(task, m)]
    assert missing == [], f"{type(task).__name__} lacks {missing}"
    assert "run_dir" in inspect.signature(task.build_model).parameters


def _has(obj: object, name: str) -> bool:
    try:
        inspect.getattr_static(obj, name)
    except AttributeError:
        return False
    return True


@pytest.mark.parametrize("name", sorted(TASKS))
def test_primary_metric_has_one_source(name, tmp_path):
    from tunelab.tasks.base import task_from_config

    cfg = make_cfg(tmp_path, task=TASKS[name])
    task = task_from_config(cfg, ["a", "b"] if name == "classification" else None)
    assert task.primary_metric == cfg.task.primary_metric
    gold = ["yes", "no", "a b c"]
    assert cfg.task.primary_metric in score(cfg.task, gold, gold, {})
