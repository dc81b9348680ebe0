"""read_table: formats, strings everywhere, file positions as index, and precise failures."""

from __future__ import annotations

import csv
import json
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunelab.data.readers import line_ending_mix, read_table
from tunelab.errors import DataError


def test_csv_bom_is_stripped_and_first_column_named_right(tmp_path):
    p = tmp_path / "bom.csv"
    p.write_bytes(b"\xef\xbb\xbfid,text,label\r\n1,hello,pos\r\n")
    df = read_table(p)
    assert list(df.columns) == ["id", "text", "label"]
    assert df.loc[2, "id"] == "1"


def test_index_is_the_line_of_the_file_with_blank_lines_and_multiline_cells(tmp_path):
    p = tmp_path / "t.csv"
    p.write_bytes(b'id,text\r\n1,"two\nlines"\r\n\r\n2,x\r\n')  # Excel style: LF inside cells, CRLF rows
    df = read_table(p)
    assert df.index.tolist() == [2, 5]
    assert df.loc[2, "text"] == "two\nlines"
    assert df.attrs["row_kind"] == "line"


def test_values_are_strings_and_numbers_unify(tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_text('{"text": "a", "label": 1}\n{"text": "b", "label": "1"}\n{"text": "c", "label": 2.0}\n{"text": "d"}\n')
    df = read_table(p)
    assert df["label"].tolist() == ["1", "1", "2", None]


def test_csv_keeps_nan_like_text_as_text(tmp_path):
    # pandas.read_csv would turn these into NaN; the label validator decides what is null.
    p = tmp_path / "t.csv"
    p.write_text("text,label\nNone,nan\nNA,null\n")
    df = read_table(p)
    assert df["text"].tolist() == ["None", "NA"] and df["label"].tolist() == ["nan", "null"]


def test_tsv_and_parquet(tmp_path):
    (tmp_path / "t.tsv").write_text("text\tlabel\na,b\tx\n")
    assert read_table(tmp_path / "t.tsv").loc[2, "text"] == "a,b"
    pd.DataFrame({"text": ["a", None], "label": [1, 2]}).to_parquet(tmp_path / "t.parquet")
    df = read_table(tmp_path / "t.parquet")
    assert df.index.tolist() == [1, 2] and df.attrs["row_kind"] == "row"
    assert df["text"].tolist() == ["a", None] and df["label"].tolist() == ["1", "2"]


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv: data file not found"):
        read_table(tmp_path / "nope.csv")
    (tmp_path / "t.xlsx").write_bytes(b"x")
    with pytest.raises(DataError, match=r"t\.xlsx: cannot tell the format"):
        read_table(tmp_path / "t.xlsx")


def test_non_utf8_names_line_and_byte_offset(tmp_path):
    p = tmp_path / "t.csv"
    p.write_bytes(b"text,label\nok,a\ncaf\xe9,b\n")
    with pytest.raises(DataError, match=r"t\.csv:3: byte offset 19 .*not valid utf-8") as info:
        read_table(p)
    assert "cp949" in info.value.hint
    assert read_table(p, encoding="cp1252").loc[3, "text"] == "café"


def test_utf16_file_is_named_as_such(tmp_path):
    p = tmp_path / "t.csv"
    p.write_bytes("text,label\nx,y\n".encode("utf-16"))
    with pytest.raises(DataError, match=r"t\.csv:1: .*UTF-16"):
        read_table(p)
    assert read_table(p, encoding="utf-16").loc[2, "text"] == "x"


def test_wrong_field_count_names_line(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("id,text,label\n1,a,b\n2,a,b,c\n")
    with pytest.raises(DataError, match=r"t\.csv:3: expected 3 fields .* found 4"):
        read_table(p)


def test_unclosed_quote_names_line(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text('id,text,label\n1,a,b\n2,"open,b\n3,c,d\n')
    with pytest.raises(DataError, match=r"t\.csv:3: .*runs over several lines"):
        read_table(p)


def test_huge_unterminated_field_fails_fast(tmp_path):
    p = tmp_path / "t.csv"
    p.write_bytes(b'id,text\n1,"' + b"x" * (17 * 1024 * 1024) + b"\n")
    with pytest.raises(DataError, match=r"t\.csv:2: a field is longer than"):
        read_table(p)


def test_huge_jsonl_line_is_read(tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_text(json.dumps({"text": "y" * 2_000_000}) + "\n")
    assert len(read_table(p).loc[1, "text"]) == 2_000_000


def test_jsonl_non_object_line(tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_text('{"text": "a"}\n[1, 2]\n')
    with pytest.raises(DataError, match=r"t\.jsonl:2: expected a JSON object"):
        read_table(p)


def test_duplicate_header(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("text,text\na,b\n")
    with pytest.raises(DataError, match=r"t\.csv:1:text: column name 'text' appears twice"):
        read_table(p)


def test_empty_header_names_are_named_by_position(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("text,label,,\na,b,,\n")
    assert list(read_table(p).columns) == ["text", "label", "unnamed_3", "unnamed_4"]


def test_line_ending_mix_ignores_newlines_in_quotes():
    assert line_ending_mix('a,b\r\n"x\ny",z\r\n') is None
    assert line_ending_mix("a,b\r\nc,d\ne,f\n") == "CRLF and LF (line 2)"


def test_mixed_endings_that_parse_are_accepted(tmp_path):
    p = tmp_path / "t.csv"
    p.write_bytes(b"text,label\r\na,b\nc,d\r\n")
    assert read_table(p)["text"].tolist() == ["a", "c"]


# ------------------------------------------------------------------------ round-trip property
_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufeff"), max_size=40)


def _write(fmt: str, path: Path, texts: list[str]) -> None:
    ids = [str(i) for i in range(len(texts))]
    if fmt == "csv":
        with open(path, "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["id", "text"])
            writer.writerows(zip(ids, texts))
    elif fmt == "jsonl":
        lines = (json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n" for i, t in zip(ids, texts))
        path.write_text("".join(lines), encoding="utf-8")
    else:
        pd.DataFrame({"id": ids, "text": texts}).to_parquet(path)


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(_TEXT, min_size=1, max_size=6))
def test_read_table_round_trips_any_unicode(fmt, texts):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"data.{fmt}"
        _write(fmt, path, texts)
        df = read_table(path)
        assert df["text"].tolist() == texts
        assert df["id"].tolist() == [str(i) for i in range(len(texts))]
