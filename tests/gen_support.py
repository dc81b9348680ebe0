"""Shared helpers for the generative-task tests (tests/test_gen_*.py): configs and tiny data."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pandas as pd

DIALOGUES = [
    ("#Person1#: 내일 뭐 해? #Person2#: 친구랑 영화 보기로 했어", "두 사람이 영화 약속을 정했다"),
    ("#Person1#: 회의는 언제예요? #Person2#: 내일 오후 세 시에 시작합니다", "회의는 내일 오후 세 시에 시작한다"),
    ("#Person1#: 배송이 아직 안 왔어요 #Person2#: 확인 부탁드립니다", "배송 확인을 부탁했다"),
    ("#Person1#: 비밀번호를 잊어버렸어요 #Person2#: 초기화해 드릴게요", "비밀번호 초기화를 요청했다"),
]
SPAM = [
    ("free prize click the link now", "spam"),
    ("회의는 내일 오후 세 시에 시작합니다", "ham"),
    ("win money today, click", "spam"),
    ("배송이 아직 도착하지 않았어요", "ham"),
]


def dialogue_frame(n: int = 16, with_summary: bool = True) -> pd.DataFrame:
    rows = []
    for i in range(n):
        d, s = DIALOGUES[i % len(DIALOGUES)]
        row = {"id": f"d{i:03d}", "dialogue": d, "summary": s}
        if not with_summary:
            del row["summary"]
        rows.append(row)
    return pd.DataFrame(rows)


def sft_frame(n: int = 16) -> pd.DataFrame:
    rows = [
        {"id": f"s{i:03d}", "instruction": f"spam or ham? {SPAM[i % 4][0]}", "response": SPAM[i % 4][1]}
        for i in range(n)
    ]
    return pd.DataFrame(rows)


def make_config(tmp: Path, model_dir: Path, task: dict[str, Any], train_file: Path, **sections: Any):
    """A validated Config for a tiny, fast run (few steps, no tracking, no doctor)."""
    from tunelab.config.loader import validate_config

    raw: dict[str, Any] = {
        "name": "gen",
        "output_dir": str(tmp / "runs"),
        "task": task,
        "data": {"train_file": str(train_file), "max_length": 96, "cache_dir": str(tmp / "cache")},
        "model": {"name_or_path": str(model_dir)},
        "training": {
            "max_steps": 4,
            "learning_rate": 5e-3,
            "per_device_train_batch_size": 8,
            "per_device_eval_batch_size": 8,
            "logging_steps": 2,
            "eval_strategy": "no",
            "save_strategy": "no",
            "warmup_steps": 0,
        },
        "inference": {"batch_size": 4, "generation": {"max_new_tokens": 8}},
        "tracking": "none",
        "doctor": {"enabled": False},
    }
    for key, value in sections.items():
        base = raw.get(key)
        raw[key] = {**copy.deepcopy(base), **value} if isinstance(base, dict) and isinstance(value, dict) else value
    return validate_config(raw)


def write_yaml(path: Path, cfg) -> Path:
    from tunelab.config.loader import dump_config

    path.write_text(dump_config(cfg), encoding="utf-8")
    return path
