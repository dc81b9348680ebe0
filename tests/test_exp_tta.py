"""TTA views and decodes, consensus selection, and summarization ensembles."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tunelab.errors import ConfigError
from tunelab.evaluation.scoring import consensus_pick
from tunelab.inference.tta import decode_settings, make_views, normalize_text, verdict

sys.path.insert(0, str(Path(__file__).parent))


def test_normalized_view_collapses_whitespace_and_repeated_punctuation():
    assert normalize_text("  where   is\tmy parcel??!!  \n") == "where is my parcel?!"
    assert normalize_text("ＡＢＣ１２３") == "ABC123"  # NFKC folds full-width forms


def test_head_and_tail_windows_keep_the_two_ends_of_a_long_text():
    from tiny import make_tokenizer

    tok = make_tokenizer()
    long = "please reset my password " * 20 + "the quick brown fox"
    views = make_views([long, "short text"], ["original", "head", "tail"], tok, max_tokens=20)
    assert views["original"][0] == long
    assert views["head"][0].startswith("please reset") and "fox" not in views["head"][0]
    assert views["tail"][0].endswith("the quick brown fox") and len(tok(views["tail"][0])["input_ids"]) <= 20
    assert views["head"][1] == views["tail"][1] == "short text"  # short rows are unchanged
    with pytest.raises(ConfigError, match="unknown view 'upside'"):
        make_views(["x"], ["upside"], tok)


def test_decode_settings_are_distinct_and_counted():
    base = {"num_beams": 1, "do_sample": False, "max_new_tokens": 8}
    settings = decode_settings(base, 4)
    assert len(settings) == 4 and settings[0] == base
    assert settings[1]["num_beams"] == 4 and [s.get("seed") for s in settings[2:]] == [0, 1]
    assert decode_settings(base, 1) == [base]


def test_consensus_picks_the_candidate_closest_to_the_others():
    cands = [
        ["they meet at noon", "a b c"],
        ["they will meet at noon today", "x y z"],
        ["completely unrelated words here", "a b d"],
    ]
    chosen, picks = consensus_pick(cands, {"tokenizer": "whitespace"})
    assert picks == [0, 0] or picks == [1, 0]
    assert chosen[1] == "a b c"
    kor = [["두 사람이 저녁 약속을 정했다"], ["두 사람이 약속을 정했다"], ["회의는 내일 시작합니다"]]
    _, picks = consensus_pick(kor, {"tokenizer": "whitespace"})
    assert picks[0] in (0, 1)


def test_verdict_states_the_direction():
    assert verdict("macro_f1", 0.5, 0.6).startswith("TTA helped") and "+0.1000" in verdict("macro_f1", 0.5, 0.6)
    assert verdict("macro_f1", 0.5, 0.4).startswith("TTA hurt")
    assert "no difference" in verdict("rouge_sum", 0.5, 0.5)


def _write_gen_run(run_dir: Path, name: str, preds: list[str], refs: list[str]) -> None:
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(
        json.dumps(
            {"name": name, "task": {"type": "summarization"}, "evaluation": {"rouge": {"tokenizer": "whitespace"}}}
        )
    )
    (run_dir / "run.json").write_text(json.dumps({"name": name, "run_format": 1}))
    (run_dir / "predictions").mkdir()
    rows = [json.dumps({"id": str(i), "prediction": p, "reference": r}) for i, (p, r) in enumerate(zip(preds, refs))]
    (run_dir / "predictions" / "validation.jsonl").write_text("\n".join(rows) + "\n")


def test_summarization_ensemble_consensus_and_best_single(tmp_path):
    from tunelab.experiments.ensemble import ensemble_command

    refs = ["they meet at noon", "the parcel is late", "reset the password"]
    runs = {
        "a": ["they meet at noon", "parcel late", "unrelated"],
        "b": ["they will meet at noon", "the parcel is late", "reset password"],
        "c": ["noon meeting", "nothing here", "reset the password now"],
    }
    for name, preds in runs.items():
        _write_gen_run(tmp_path / "runs" / name, name, preds, refs)
    exp = {
        "format": 1,
        "name": "gen",
        "task": "summarization",
        "kfold": None,
        "variants": [{"name": n} for n in runs],
        "runs": {n: {"name": n, "status": "ok", "run_dir": f"runs/{n}", "variant": n} for n in runs},
    }
    (tmp_path / "experiment.json").write_text(json.dumps(exp))
    report = ensemble_command(tmp_path)
    assert set(report["methods"]) == {"consensus", "best"}
    assert report["primary_metric"] == "rouge_sum"
    best = report["best_single"]["name"]
    assert report["methods"]["best"]["scores"]["rouge_sum"] == pytest.approx(report["single"][best]["rouge_sum"])
    assert sum(report["methods"]["consensus"]["picked"].values()) == 3
    assert report["gain"] == pytest.approx(report["ensemble_score"] - report["single"][best]["rouge_sum"])
