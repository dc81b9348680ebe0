"""Detect mojibake: UTF-8 text that was decoded with a legacy code page and saved again.

Korean "배" is the UTF-8 bytes EB B0 B0; read as cp1252 they become "ë°°", as cp1253 "λ°°";
"실" (EC 8B A4) read as cp1253 becomes "μ‹¤". Such text is valid Unicode, so no decoder
complains, and a model happily trains on garbage.

Detection reverses the accident: for every run of non-ASCII characters (UTF-8 multi-byte
sequences never contain ASCII bytes, so a mangled character sequence is always one such run)
encode the run back with each legacy code page and decode the bytes as UTF-8. Genuine text
almost never survives this: French "é" is one byte E9 (a UTF-8 lead byte without its
continuation bytes), Hangul and emoji do not encode in cp125x at all, and real cp949 Hangul
bytes start with B0-C8, which are UTF-8 continuation bytes. A run that turns into valid UTF-8
with at least one multi-byte character is mojibake, and the decoded run is its repair.

`ftfy` does this in general; we need only this check (with a row-level report), so it is not a
dependency.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

# Order matters only for the reported code page: the first that repairs a run wins.
SINGLE_BYTE = ("cp1252", "cp1254", "cp1253", "latin-1")
CODEPAGES = (*SINGLE_BYTE, "cp949")
_RUN = re.compile(r"[^\x00-\x7f]{2,}")
_C1_AND_LOST = frozenset(chr(b) for b in range(0x80, 0xA0)) | {"\ufffd"}
# What each single-byte code page shows for bytes 0x80-0xFF (plus C1 controls and U+FFFD, see
# _encode): a run with any other character cannot come from that code page, which rejects
# genuine Hangul, CJK, emoji... with one set lookup instead of an encode attempt.
_SHOWN = {cp: frozenset(bytes(range(0x80, 0x100)).decode(cp, errors="ignore")) | _C1_AND_LOST for cp in SINGLE_BYTE}
_ANY_SHOWN = frozenset().union(*_SHOWN.values())
# A cp949 misread of Korean UTF-8 pairs bytes into Hanja (lead EA-ED) or U+FFFD; genuine
# Korean text rarely has Hanja, so a run without them is not tried as cp949.
_CJK = "\u4e00-\u9fff\uf900-\ufaff"
_CP949_HINT = re.compile(f"[{_CJK}\ufffd]")
_LEGACY_CLASS = "".join(re.escape(c) for c in sorted(_ANY_SHOWN))
# A value with none of these characters cannot contain mojibake: one C-speed search per value.
_SUSPECT = re.compile(f"[{_LEGACY_CLASS}{_CJK}]")
_LEGACY_RUN = re.compile(f"[{_LEGACY_CLASS}]{{2,}}")


@dataclass(frozen=True)
class Mojibake:
    """One mangled value: where it is and what it should have been."""

    row: int  # the frame index (file line/row), as read_table sets it
    column: str
    codepage: str
    text: str
    repaired: str


@dataclass(frozen=True)
class MojibakeReport:
    rows_checked: int
    rows_affected: int
    examples: list[Mojibake]

    @property
    def share(self) -> float:
        return self.rows_affected / self.rows_checked if self.rows_checked else 0.0


def repair_run(run: str) -> tuple[str, str] | None:
    """(codepage, repaired) if `run` is UTF-8 bytes shown in a legacy code page, else None.

    Characters rebuilt from a byte that was lost (U+FFFD) come back as U+FFFD.
    """
    chars = set(run)
    if chars <= _ANY_SHOWN:
        candidates = [cp for cp in SINGLE_BYTE if chars <= _SHOWN[cp]]
    elif _CP949_HINT.search(run):
        candidates = ["cp949"]
    else:
        return None
    for codepage in candidates:
        encoded = _encode(run, codepage)
        if encoded is None:
            continue
        raw, lost = encoded
        try:
            fixed = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if _plausible(fixed, codepage):
            return codepage, _mark_lost(fixed, lost) if lost else fixed
    return None


def _encode(run: str, codepage: str) -> tuple[bytes, set[int]] | None:
    """`run` as bytes in `codepage`, plus the offsets of bytes we had to guess."""
    try:
        return run.encode(codepage), set()
    except UnicodeEncodeError:
        pass
    if codepage == "cp949":
        return None
    # Windows code pages leave a few bytes (e.g. 0x81, 0x8D in cp1252) undefined; tools that
    # "decoded" them anyway produced the C1 control with the same number (map those back), or
    # U+FFFD: then the byte is lost, but all undefined cp125x bytes bar two are UTF-8
    # continuation bytes, so 0x80 stands in and the character it ends up in is marked lost.
    out = bytearray()
    lost: set[int] = set()
    for ch in run:
        try:
            out += ch.encode(codepage)
        except UnicodeEncodeError:
            if 0x80 <= ord(ch) <= 0x9F:
                out.append(ord(ch))
            elif ch == "\ufffd":
                lost.add(len(out))
                out.append(0x80)
            else:
                return None
    return bytes(out), lost


def _mark_lost(fixed: str, lost: set[int]) -> str:
    out, offset = [], 0
    for ch in fixed:
        width = len(ch.encode("utf-8"))
        out.append("\ufffd" if any(offset <= i < offset + width for i in lost) else ch)
        offset += width
    return "".join(out)


def _plausible(fixed: str, codepage: str) -> bool:
    # Must contain a real multi-byte character and no control characters.
    if not any(ord(c) > 0x7F and c != "\ufffd" for c in fixed):
        return False
    if any(unicodedata.category(c) in ("Cc", "Cs", "Co", "Cn") for c in fixed if c not in "\t\n\r"):
        return False
    # Genuine Korean read back as cp949 bytes can form 2-byte UTF-8 (Latin/Greek/Cyrillic) but
    # never Hangul (KS X 1001 Hangul lead bytes are UTF-8 continuation bytes); a cp949 misread
    # of Korean UTF-8 repairs to Hangul. So only a Hangul result counts for cp949.
    return codepage != "cp949" or any("\uac00" <= c <= "\ud7a3" for c in fixed)


def suspect_mask(values: Any) -> np.ndarray:
    """For an Arrow string array: which values `repair_text` would look at (contain a character
    of _SUSPECT), tested by Arrow's regex engine over the whole column in one call instead of
    once per value in Python. The class holds only literal characters and ranges, which RE2 and
    `re` read alike (tests compare the two on every code point). Nulls are False."""
    import pyarrow.compute as pc

    found = pc.match_substring_regex(values, _SUSPECT.pattern).fill_null(False)
    return np.asarray(found.to_numpy(zero_copy_only=False), dtype=bool)


def repair_text(text: str) -> tuple[str, str] | None:
    """(codepage, repaired text) if `text` contains mojibake, else None."""
    if not _SUSPECT.search(text):
        return None
    found: str | None = None

    def fix(match: re.Match[str]) -> str:
        nonlocal found
        result = repair_run(match.group())
        if result is None:
            return match.group()
        found = found or result[0]
        return result[1]

    # Runs made only of characters a single-byte code page shows; then (rarely) cp949 runs.
    repaired = _LEGACY_RUN.sub(fix, text)
    if _CP949_HINT.search(repaired):
        repaired = _RUN.sub(fix, repaired)
    return (found, repaired) if found else None


def scan(
    values: Iterable[tuple[int, str, str | None]], max_examples: int = 3, rows_checked: int | None = None
) -> MojibakeReport:
    """Scan (row, column, text) cells; a row counts once however many of its cells are mangled.

    `rows_checked`, when given, is the number of rows looked at, for a caller that passes only
    the cells that can hold mojibake (non-ASCII ones); otherwise it is counted from `values`.
    """
    checked: set[int] = set()
    affected: set[int] = set()
    examples: list[Mojibake] = []
    for row, column, text in values:
        checked.add(row)
        if not text or text.isascii() or row in affected:
            continue
        result = repair_text(text)
        if result is None:
            continue
        affected.add(row)
        if len(examples) < max_examples:
            examples.append(Mojibake(row, column, result[0], text, result[1]))
    return MojibakeReport(len(checked) if rows_checked is None else rows_checked, len(affected), examples)


def describe(example: Mojibake, limit: int = 40) -> str:
    """'"ë°°ì†¡" looks like UTF-8 read as cp1252; it should read "배송"' (shortened)."""
    return (
        f"{_clip(example.text, limit)!r} looks like UTF-8 text decoded as {example.codepage} and saved again; "
        f"repaired it reads {_clip(example.repaired, limit)!r}"
    )


def _clip(text: str, limit: int) -> str:
    match = _RUN.search(text)
    start = max(0, match.start() - 5) if match else 0
    piece = text[start : start + limit]
    return ("…" if start else "") + piece + ("…" if start + limit < len(text) else "")
