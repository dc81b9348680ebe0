"""Every malformed data file fails with one DataError naming file:row:column, before any model
is loaded, and leaves nothing behind (no cache, no run files)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from data_support import make_cfg
from tunelab.errors import DataError

BAD = Path(__file__).parent / "bad_inputs" / "data"
_spec = importlib.util.spec_from_file_location("make_bad_data", BAD / "make_bad_data.py")
make_bad_data = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_bad_data)


def _snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("name", sorted(make_bad_data.EXPECTED))
def test_bad_file_names_file_row_column_and_writes_nothing(name, tmp_path, monkeypatch):
    from tunelab.pipeline import prepare

    src = tmp_path / "in" / name
    src.parent.mkdir()
    shutil.copy(BAD / name, src)
    monkeypatch.chdir(tmp_path)
    cfg = make_cfg(tmp_path, train_file=f"in/{name}")
    # A model load here would be a bug: validation must fail first.
    monkeypatch.setattr("tunelab.models.tokenizer.load_tokenizer", lambda cfg: pytest.fail("tokenizer loaded"))
    before = _snapshot(tmp_path)
    with pytest.raises(DataError) as info:
        prepare.prepare_from_config(cfg)
    message = str(info.value)
    assert make_bad_data.EXPECTED[name].replace(name, f"in/{name}") in message
    assert info.value.hint, "every data error carries a hint"
    assert "\n" not in info.value.message
    assert _snapshot(tmp_path) == before
    assert not (tmp_path / "cache").exists()


def test_bad_files_on_disk_match_generator():
    # The corpus is generated; a hand edit that drifts from the generator would go unnoticed.
    for name, data in make_bad_data.FILES.items():
        if name.endswith(".parquet"):
            continue  # parquet bytes depend on the pyarrow version
        assert (BAD / name).read_bytes() == data, name


def test_cli_validate_bad_file_exits_2_with_one_line(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from tunelab.cli import app

    shutil.copy(BAD / "null_label.csv", tmp_path / "train.csv")
    (tmp_path / "cfg.yaml").write_text(
        "task: {type: classification}\ndata: {train_file: train.csv}\nmodel: {name_or_path: x}\n"
    )
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["validate", "cfg.yaml"])
    assert result.exit_code == 2
    assert "train.csv:5:label" in result.output
    assert "Traceback" not in result.output
