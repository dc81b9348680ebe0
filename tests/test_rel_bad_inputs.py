"""Guarantee 5: every malformed input under tests/bad_inputs/ goes through the real CLI and gets one
clear error line (+ an optional hint), a non-zero exit, no traceback, no hang and no partial output.

`CASES` maps every file/dir of the corpus (configs, data, predict, runs) to the command it is fed
to and a fragment its error line must contain; `test_every_corpus_entry_has_a_case` fails when a
file is added without one, so nothing in the corpus goes untested. Commands run in-process through
typer's CliRunner (fast; a timeout marker catches hangs); `test_real_entry_point_*` repeats the
nastiest ones through `python -m tunelab.cli` in a subprocess. API replies (no CLI of their own:
the baseline records a bad reply per row) go through the client's `parse_reply`.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rel_support import make_project, write_rows

BAD = Path(__file__).parent / "bad_inputs"
_spec = importlib.util.spec_from_file_location("make_bad_data", BAD / "data" / "make_bad_data.py")
make_bad_data = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_bad_data)

CONFIGS = {
    "unknown_key.yaml": "colour: unknown key",
    "misspelled_section.yaml": "trainng: unknown key; did you mean training?",
    "misspelled_nested_key.yaml": "training.learning_rat: unknown key; did you mean training.learning_rate?",
    "wrong_type.yaml": "training.learning_rate: Input should be a valid number",
    "negative_batch.yaml": "training.per_device_train_batch_size: Input should be greater than 0 (got -4)",
    "list_for_section.yaml": "training: Input should be a valid dictionary",
    "bad_task_type.yaml": "task.type: must be one of classification, summarization, sft (got 'regression')",
    "missing_model.yaml": "model: required key is missing",
    "empty.yaml": "config is empty",
    "comments_only.yaml": "config is empty",
    "top_level_list.yaml": "top level must be a mapping, got list",
    "top_level_scalar.yaml": "top level must be a mapping, got str",
    "invalid_syntax.yaml": "invalid YAML",
    "tab_indent.yaml": "invalid YAML",
    "alias_bomb.yaml": "alias bomb",
    "deep_nesting.yaml": "nested deeper than 12 levels",
    "very_deep_nesting.yaml": "nested deeper than 12 levels",
    "python_object_tag.yaml": "could not determine a constructor for the tag",
    "not_utf8.yaml": "not UTF-8 text",
    "binary.yaml": "not UTF-8 text",
    "bad_run_name.yaml": "name: String should match pattern",
    "train_file_missing.yaml": "no_such_file.csv: data file not found",
    "train_file_is_dir.yaml": "cannot tell the format",
    "kfold_out_of_range.yaml": "fold 5 is out of range for k=3",
    "nan_learning_rate.yaml": "training.learning_rate: Input should be greater than 0 (got nan)",
}
# predict/ files: (command, fragment). Label problems only matter where labels are used: evaluate.
PREDICT = {
    "binary.csv": ("predict", "binary.csv:3: NUL byte"),
    "empty.csv": ("predict", "empty.csv: file is empty"),
    "header_only.csv": ("predict", "header_only.csv: no data rows"),
    "jsonl_array.jsonl": ("predict", "jsonl_array.jsonl:1: expected a JSON object per line, got list"),
    "missing_text_column.csv": ("predict", "missing_text_column.csv:1:text: required column 'text' is missing"),
    "mixed_types.jsonl": ("predict", "mixed_types.jsonl:2:text: text is a JSON object, not text"),
    "nan_like_labels.csv": ("evaluate", "nan_like_labels.csv:3:label: label is null-like ('N/A')"),
    "not_utf8.csv": ("predict", "not_utf8.csv:2: byte offset 10"),
    "unseen_labels.csv": ("evaluate", "label 'billing' is not in the run's label map"),
}
# runs/ dirs: fragment of the error every run command must give.
RUNS = {
    "other_version": "run written by tunelab 9.1.0 (format 99)",
    "corrupt_run_json": "run.json: corrupt run file",
    "run_json_is_list": "run.json: corrupt run file",
    "no_run_json": "not a tunelab run directory (no run.json)",
    "missing_config": "config.yaml missing",
    "config_no_longer_valid": "removed_option: unknown key",
    "unfinished": "no trained model in model/",
}
# `report` describes unfinished runs on purpose; it must refuse only what it cannot read.
REPORT_REFUSES = {"other_version", "corrupt_run_json", "run_json_is_list", "no_run_json"}
API_FILES = {
    "content_list.json",
    "content_null.json",
    "empty_body.txt",
    "empty_choices.json",
    "html_error_page.txt",
    "no_choices.json",
    "not_utf8.json",
    "top_level_list.json",
    "truncated.json",
}


def _corpus(folder: str) -> set[str]:
    return {p.name for p in (BAD / folder).iterdir() if p.suffix != ".py"}


def test_every_corpus_entry_has_a_case():
    assert _corpus("configs") == set(CONFIGS)
    assert _corpus("data") == set(make_bad_data.EXPECTED)
    assert _corpus("predict") == set(PREDICT)
    assert _corpus("runs") == set(RUNS)
    assert _corpus("api") == API_FILES
    assert sum(len(x) for x in (CONFIGS, make_bad_data.EXPECTED, PREDICT, RUNS, API_FILES)) >= 30


# ------------------------------------------------------------------------------ helpers
def _snapshot(root: Path) -> dict[str, int]:
    """Every file and non-empty directory (an empty output root such as `runs/` may be created)."""
    return {
        str(p.relative_to(root)): p.stat().st_size
        for p in root.rglob("*")
        if not p.is_dir() or p.is_symlink() or any(p.iterdir())
    }


def assert_one_clear_error(result, fragment: str) -> None:
    """Exit 2, one `error:` line containing `fragment`, at most a `hint:` after it, no traceback."""
    out = result.output
    assert result.exit_code == 2, out
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # not an escaped exception
    assert "Traceback" not in out
    lines = out.splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith("error:")]
    assert len(errors) == 1, out
    i = errors[0]
    assert fragment in lines[i], f"{fragment!r} not in {lines[i]!r}"
    rest = lines[i + 1 :]
    assert not rest or (len(rest) == 1 and rest[0].startswith("hint:")), out  # nothing after but the hint


def invoke(*args: str):
    from tunelab.cli import app

    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A tiny model + valid data; `trained` is a finished run for predict/evaluate cases."""
    root = tmp_path_factory.mktemp("bad_inputs")
    cfg = make_project(root, num_train_epochs=1, save_strategy="no", eval_strategy="no")
    trained = root / "runs" / "trained"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HOME", str(root / "hf_home"))
        result = invoke("train", str(cfg), "--run-dir", str(trained))
    assert result.exit_code == 0, result.output
    return {"root": root, "model": json.loads(cfg.read_text())["model"]["name_or_path"], "trained": trained}


@pytest.fixture
def workdir(tmp_path, project, monkeypatch):
    """An empty working directory with `model/` and a valid `train.csv`, as the config corpus expects."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "model").symlink_to(project["model"], target_is_directory=True)
    write_rows(work / "train.csv", 12)
    monkeypatch.chdir(work)
    return work


# -------------------------------------------------------------------------------- cases
@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_bad_config_through_train(name, workdir):
    shutil.copy(BAD / "configs" / name, workdir / "cfg.yaml")
    before = _snapshot(workdir)
    assert_one_clear_error(invoke("train", "cfg.yaml"), CONFIGS[name])
    assert _snapshot(workdir) == before  # no run directory, no cache, nothing


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", sorted(make_bad_data.EXPECTED))
def test_bad_data_through_train(name, workdir):
    (workdir / "in").mkdir()
    shutil.copy(BAD / "data" / name, workdir / "in" / name)
    (workdir / "cfg.yaml").write_text(
        json.dumps(
            {
                "task": {"type": "classification"},
                "data": {"train_file": f"in/{name}"},
                "model": {"name_or_path": "model"},
                "tracking": "none",
                "doctor": {"enabled": False},
            }
        )
    )
    before = _snapshot(workdir)
    fragment = make_bad_data.EXPECTED[name].replace(name, f"in/{name}")
    assert_one_clear_error(invoke("train", "cfg.yaml"), fragment)
    assert _snapshot(workdir) == before  # the run directory a rejected input would have started is gone


@pytest.mark.timeout(120)
def test_huge_line_is_refused_not_swallowed(workdir):
    # A stray quote makes the rest of a big file one field: refused, not loaded into memory as text.
    (workdir / "huge.csv").write_bytes(b'id,text,label\n1,"' + b"x" * (17 << 20) + b"\n2,ok,a\n")
    (workdir / "cfg.yaml").write_text(
        json.dumps(
            {
                "task": {"type": "classification"},
                "data": {"train_file": "huge.csv"},
                "model": {"name_or_path": "model"},
                "tracking": "none",
            }
        )
    )
    before = _snapshot(workdir)
    assert_one_clear_error(invoke("validate", "cfg.yaml"), "huge.csv:2: a field is longer than")
    assert _snapshot(workdir) == before


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", sorted(PREDICT))
def test_bad_prediction_input(name, project, tmp_path):
    command, fragment = PREDICT[name]
    src = tmp_path / name
    shutil.copy(BAD / "predict" / name, src)
    out = tmp_path / "out" / "pred.csv"
    run_before = _snapshot(project["trained"])
    extra = ["--output", str(out)] if command == "predict" else []
    assert_one_clear_error(invoke(command, str(project["trained"]), "--input", str(src), *extra), fragment)
    assert not out.parent.exists()  # no prediction file, not even its folder
    assert _snapshot(project["trained"]) == run_before  # evaluate writes no partial report into the run


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "name, command",
    [
        (n, c)
        for n in sorted(RUNS)
        for c in ("predict", "evaluate", "export", "report")
        if c != "report" or n in REPORT_REFUSES
    ],
)
def test_bad_run_directory(name, command, project, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(BAD / "runs" / name, run)
    good = tmp_path / "in.csv"
    write_rows(good, 6)
    out = tmp_path / "out" / "pred.csv"
    args = {
        "predict": ["--input", str(good), "--output", str(out)],
        "evaluate": ["--input", str(good)],
        "export": ["--output", str(tmp_path / "out" / "exported")],
        "report": [],
    }[command]
    before = _snapshot(run)
    fragment = RUNS[name] if command != "report" or name != "no_run_json" else "neither a run (run.json)"
    assert_one_clear_error(invoke(command, str(run), *args), fragment)
    assert _snapshot(run) == before and not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", sorted(API_FILES))
def test_bad_api_reply_is_one_line_api_error(name):
    from tunelab.experiments.llm_client import ApiError, parse_reply

    with pytest.raises(ApiError) as err:
        parse_reply((BAD / "api" / name).read_bytes())
    message = str(err.value)
    assert message.startswith("malformed reply (") and "\n" not in message and len(message) < 400


# ---------------------------------------------------------------- the real entry point
@pytest.mark.parametrize(
    "name, fragment",
    [
        ("configs/very_deep_nesting.yaml", "nested deeper than"),
        ("configs/alias_bomb.yaml", "alias bomb"),
        ("configs/binary.yaml", "not UTF-8 text"),
        ("configs/python_object_tag.yaml", "could not determine a constructor"),
    ],
)
def test_real_entry_point_config_bombs(name, fragment, tmp_path):
    shutil.copy(BAD / name, tmp_path / "cfg.yaml")
    res = subprocess.run(
        [sys.executable, "-m", "tunelab.cli", "train", "cfg.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2 and "Traceback" not in res.stderr + res.stdout
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and fragment in errors[0], res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cfg.yaml"]


@pytest.mark.timeout(120)
def test_evaluate_output_stays_inside_evaluations(project, tmp_path):
    """An input named `...csv` (stem `..`) once wrote evaluations/../metrics.json over the run's own."""
    src = tmp_path / "...csv"
    write_rows(src, 6)
    metrics = project["trained"] / "metrics.json"
    before = metrics.read_bytes()
    result = invoke("evaluate", str(project["trained"]), "--input", str(src), "--set", "data.format=csv")
    assert result.exit_code == 0, result.output
    assert metrics.read_bytes() == before
    assert (project["trained"] / "evaluations" / "input" / "metrics.json").is_file()
