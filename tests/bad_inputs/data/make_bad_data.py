"""Regenerate the malformed data files in this folder: `python tests/bad_inputs/data/make_bad_data.py`.

Each file is the smallest classification dataset (columns id,text,label) broken in one way;
`EXPECTED` maps it to the `path:row:column` fragment its DataError must name (used by
tests/test_data_bad_inputs.py). Bytes are written exactly (no newline translation).
"""

from __future__ import annotations

import io
from pathlib import Path

HERE = Path(__file__).resolve().parent
GOOD_ROWS = [
    ("1", "배송이 아직 도착하지 않았어요", "shipping"),
    ("2", "please reset my password", "account"),
    ("3", "my card was charged twice", "billing"),
    ("4", "비밀번호를 잊어버렸어요", "account"),
]


def _csv(rows, header="id,text,label", newline="\n") -> bytes:
    return (newline.join([header, *(",".join(r) for r in rows)]) + newline).encode("utf-8")


def _mojibake(codepage: str) -> bytes:
    rows = [
        (i, t.encode("utf-8").decode(codepage, errors="replace") if not t.isascii() else t, lab)
        for i, t, lab in GOOD_ROWS
    ]
    return _csv(rows)


def _parquet_truncated() -> bytes:
    import pandas as pd

    buf = io.BytesIO()
    pd.DataFrame(GOOD_ROWS * 50, columns=["id", "text", "label"]).to_parquet(buf)
    data = buf.getvalue()
    return data[: len(data) // 2]


FILES: dict[str, bytes] = {
    "missing_label_column.csv": _csv([(i, t) for i, t, _ in GOOD_ROWS], header="id,text"),
    "empty_text.csv": _csv([GOOD_ROWS[0], ("2", "", "account"), *GOOD_ROWS[2:]]),
    "whitespace_text.csv": _csv([GOOD_ROWS[0], GOOD_ROWS[1], ("3", "   \t ", "billing"), GOOD_ROWS[3]]),
    "null_label.csv": _csv([*GOOD_ROWS[:3], ("4", "비밀번호를 잊어버렸어요", "")]),
    "nan_label.csv": _csv([GOOD_ROWS[0], ("2", "please reset my password", "NaN"), *GOOD_ROWS[2:]]),
    "duplicate_ids.csv": _csv([*GOOD_ROWS[:3], ("2", "another text", "billing")]),
    "not_utf8_cp949.csv": "id,text,label\n1,배송이 아직 도착하지 않았어요,shipping\n".encode("cp949"),
    "bom_in_middle.csv": _csv(GOOD_ROWS[:2]) + b"\xef\xbb\xbf" + _csv(GOOD_ROWS[2:]),
    # A CRLF file where one text holds a bare CR: the record splits in two.
    "crlf_mix_broken.csv": _csv(GOOD_ROWS[:2], newline="\r\n") + b"3,my card was\rcharged twice,billing\r\n",
    "mojibake_cp1252.csv": _mojibake("cp1252"),
    "mojibake_cp1253.csv": _mojibake("cp1253"),
    "mojibake_cp1254.csv": _mojibake("cp1254"),
    "truncated.parquet": b"",  # filled in main() (needs pandas)
    "binary_named.csv": b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(range(256)),
    "malformed.jsonl": b'{"id": "1", "text": "ok", "label": "a"}\n{"id": "2", "text": "cut off", "lab\n',
    "empty.csv": b"",
    "header_only.csv": b"id,text,label\n",
}

# file -> fragment its error must contain
EXPECTED: dict[str, str] = {
    "missing_label_column.csv": "missing_label_column.csv:1:label",
    "empty_text.csv": "empty_text.csv:3:text",
    "whitespace_text.csv": "whitespace_text.csv:4:text",
    "null_label.csv": "null_label.csv:5:label",
    "nan_label.csv": "nan_label.csv:3:label",
    "duplicate_ids.csv": "duplicate_ids.csv:5:id",
    "not_utf8_cp949.csv": "not_utf8_cp949.csv:2: byte offset 16",
    "bom_in_middle.csv": "bom_in_middle.csv:4:",
    "crlf_mix_broken.csv": "crlf_mix_broken.csv:4:",
    "mojibake_cp1252.csv": "mojibake_cp1252.csv:2:text",
    "mojibake_cp1253.csv": "mojibake_cp1253.csv:2:text",
    "mojibake_cp1254.csv": "mojibake_cp1254.csv:2:text",
    "truncated.parquet": "truncated.parquet: not a readable Parquet file",
    "binary_named.csv": "binary_named.csv:1: NUL byte",
    "malformed.jsonl": "malformed.jsonl:2: malformed JSON",
    "empty.csv": "empty.csv: file is empty",
    "header_only.csv": "header_only.csv: no data rows",
}


def main() -> None:
    FILES["truncated.parquet"] = _parquet_truncated()
    for name, data in FILES.items():
        (HERE / name).write_bytes(data)


if __name__ == "__main__":
    main()
