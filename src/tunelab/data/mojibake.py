"""Detect and repair mojibake: UTF-8 text that was decoded with a legacy code page and saved again.

Korean "배" is the UTF-8 bytes EB B0 B0; read as cp1252 they become "ë°°", as cp1253 "λ°°".
Such text is valid Unicode, so no decoder complains, and a model happily trains on garbage.

What ftfy decides (`ftfy.is_bad`, `ftfy.fix_encoding_and_explain`): whether a string is
mojibake of a single-byte code page (Windows-125x, latin-1, MacRoman, including the "sloppy"
variants that kept undefined bytes as C1 controls and runs where bytes were lost), by a badness
heuristic tuned on real web text that leaves German „…“, French « », `CAFÉ’S`, Greek, Cyrillic,
CJK and emoji alone; and the repair, changing only the encoding (`ftfy.fix_text` would also
straighten quotes and change character widths, which is not ours to do).

What we add, because ftfy does not do it:
- cp949 (Korean Windows), a double-byte code page ftfy does not handle: UTF-8 read as cp949
  turns into Hangul syllables outside KS X 1001 (the 2,350 syllables genuine Korean text is
  written with), Hanja and U+FFFD; we re-encode such text with cp949 and accept it when the bytes
  decode as UTF-8 into more real characters than broken ones (`_cp949`);
- whether a repair is complete: bytes the code page left undefined and the tool dropped or
  replaced by U+FFFD are gone, and such rows are reported as not fully repairable;
- the likely code page for the report, the row-level report itself (`scan`) and a prefilter
  that lets Arrow skip every value holding none of the characters mojibake is made of.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

# The code pages we name in reports, in the order we guess them (most common first).
SINGLE_BYTE = ("cp1252", "cp1254", "cp1253", "latin-1")
_RUN = re.compile(r"[^\x00-\x7f]{2,}")
_KSX1001_HANGUL = frozenset(chr(c) for c in range(0xAC00, 0xD7A4) if len(chr(c).encode("euc-kr")) == 2)
_C1_OR_LOST = re.compile("[\x80-\x9f\ufffd]")


def _ranges(chars: Iterable[str]) -> str:
    """A regex character class body for `chars` (ranges of consecutive code points)."""
    points = sorted({ord(c) for c in chars})
    out, start = [], None
    for i, p in enumerate(points):
        start = p if start is None else start
        if i + 1 == len(points) or points[i + 1] != p + 1:
            out.append(re.escape(chr(start)) + (f"-{re.escape(chr(p))}" if p > start else ""))
            start = None
    return "".join(out)


def _ftfy_characters() -> set[str]:
    """Every non-ASCII character ftfy's badness regex is written with (ranges expanded).

    Each alternative of that regex needs at least one of them, so a value without any of them
    cannot be `is_bad` (tests check this on the mangled corpus and on every code point).
    """
    from ftfy.badness import BADNESS_RE

    pattern = BADNESS_RE.pattern
    chars = {c for c in pattern if ord(c) > 0x7F}
    for lo, hi in re.findall(r"([^\x00-\x7f])-([^\x00-\x7f])", pattern):
        chars.update(chr(c) for c in range(ord(lo), ord(hi) + 1))
    return chars


_UHC_ONLY_HANGUL = frozenset(chr(c) for c in range(0xAC00, 0xD7A4)) - _KSX1001_HANGUL
# What a cp949 misread produces and genuine text rarely has: Hangul outside KS X 1001, U+FFFD.
# Hanja alone are not a sign (genuine Korean, Chinese, Japanese use them).
_CP949_LETTERS = re.compile("[\uac00-\ud7a3\u4e00-\u9fff\uf900-\ufaff\ufffd]")
_CP949_PIECES = re.compile("([\x00-\x7f]+|\ufffd)")
# Genuine Korean has a rare non-KS X 1001 syllable (똠, 쌰); a misread makes them the majority.
_CP949_MIN_MARK_SHARE = 0.3
# What a single-byte code page shows for UTF-8 continuation bytes (80-BF): every multi-byte
# UTF-8 sequence has one, so every single-byte misread holds one of these characters.
_CONTINUATION_SHOWN = {
    ch
    for codec in ("cp1252", "cp1253", "cp1254", "latin-1")
    for ch in bytes(range(0x80, 0xC0)).decode(codec, errors="ignore")
} | {chr(c) for c in range(0x80, 0xC0)}
# A value with none of these cannot be mojibake by any of our checks (ftfy's, the short-run and
# the cp949 one): one C-speed search per value, or one Arrow call per column (suspect_mask).
_SUSPECT = re.compile(f"[{_ranges(_ftfy_characters() | _CONTINUATION_SHOWN | _UHC_ONLY_HANGUL | {chr(0xFFFD)})}]")


@dataclass(frozen=True)
class Repair:
    """What one value should have been: the repair, the code page it came from, and whether
    every character came back (False when the code page's undefined bytes were lost)."""

    codepage: str
    repaired: str
    complete: bool


@dataclass(frozen=True)
class Mojibake:
    """One mangled value: where it is and what it should have been."""

    row: int  # the frame index (file line/row), as read_table sets it
    column: str
    codepage: str
    text: str
    repaired: str
    complete: bool = True


@dataclass(frozen=True)
class MojibakeReport:
    rows_checked: int
    rows_affected: int
    examples: list[Mojibake]

    @property
    def share(self) -> float:
        return self.rows_affected / self.rows_checked if self.rows_checked else 0.0


def repair(text: str) -> Repair | None:
    """The repair of `text` if it contains mojibake, else None."""
    if not text or text.isascii() or not _SUSPECT.search(text):
        return None
    import ftfy

    if ftfy.is_bad(text):
        fixed, steps = ftfy.fix_encoding_and_explain(text)
        # Bad-looking text that no code page explains ("ßÀ") is not evidence enough to stop a
        # run; it may still be a cp949 misread (below).
        codepage = _codepage(steps, text)
        readable = fixed != text and _plausible(text, fixed, steps)
        if readable and _explained(text, fixed):
            # Undefined bytes that were dropped or replaced leave text ftfy cannot finish: still
            # bad, or holding U+FFFD / C1 controls / pieces of UTF-8 where characters were.
            complete = not ftfy.is_bad(fixed) and not _C1_OR_LOST.search(fixed) and not _leftover(fixed, codepage)
            return Repair(codepage, fixed, complete)
        if _leftover(text, codepage):
            # Pieces of UTF-8 that lost a byte: ftfy decodes some of them (or none); the rest of
            # the row cannot be brought back.
            return Repair(codepage, fixed if readable else text, False)
    short = _short_single_byte(text)
    if short is not None:
        codepage, fixed = short
        return Repair(codepage, fixed, not _C1_OR_LOST.search(fixed) and not _leftover(fixed, codepage))
    found = _cp949(text)
    if found is not None:
        return Repair("cp949", found[0], found[1])
    return None


def repair_text(text: str) -> tuple[str, str] | None:
    """(codepage, repaired text) if `text` contains mojibake, else None."""
    found = repair(text)
    return None if found is None else (found.codepage, found.repaired)


def _plausible(text: str, fixed: str, steps: Any) -> bool:
    """Whether a repair is one of the code pages we report on and introduces characters people
    write. ftfy's heuristic is tuned on natural text; on letter soup ("ßÆ", "ËãøÏ") it can
    decode letters into NKo, unassigned code points or, through MacRoman, Hangul, which no real
    text was. Such a "repair" is refused."""
    import unicodedata

    if any(action == "encode" and "windows" not in str(arg) and "latin" not in str(arg) for action, arg in steps or ()):
        return False  # MacRoman, cp437: not code pages our users' files come from
    for ch in set(fixed) - set(text):
        if 0x0700 <= ord(ch) <= 0x08FF or unicodedata.category(ch) in ("Cn", "Co", "Cs"):
            return False
    return True


def _explained(text: str, fixed: str) -> bool:
    """Whether every span ftfy changed is UTF-8 shown in one of SINGLE_BYTE (C1 included).
    ftfy's `decode_inconsistent_utf8` step names no code page and also tries MacRoman & co."""
    import difflib

    matcher = difflib.SequenceMatcher(None, text, fixed, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        source, target = text[i1:i2], fixed[j1:j2]
        if not any(_decodes_to(source, target, shown) for shown in _byte_maps().values()):
            return False
    return True


def _decodes_to(source: str, target: str, shown: dict[str, int]) -> bool:
    try:
        raw = bytes(b if (b := shown.get(c)) is not None else ord(c) for c in source if c != "\ufffd")
        return raw.decode("utf-8", errors="replace").replace("\ufffd", "") == target.replace("\ufffd", "")
    except ValueError:  # a character above U+00FF that the code page does not show
        return False


@functools.cache
def _byte_maps() -> dict[str, dict[str, int]]:
    """For each single-byte code page: character -> the byte it shows, C1 controls included
    (ftfy's "sloppy" codecs decode the bytes a code page leaves undefined as C1 controls)."""
    import ftfy.bad_codecs  # noqa: F401  registers the sloppy-windows-125x codecs

    maps = {}
    for codepage in SINGLE_BYTE:
        codec = codepage if codepage == "latin-1" else f"sloppy-windows-{codepage[2:]}"
        maps[codepage] = {ch: b for b, ch in enumerate(bytes(range(256)).decode(codec)) if b >= 0x80}
    return maps


def _leftover(fixed: str, codepage: str) -> bool:
    """Whether `fixed` still holds a piece of UTF-8 shown in `codepage` that ftfy could not
    decode because a byte of it was lost: a character showing a UTF-8 lead byte (C2-F4) next
    to one showing a continuation byte (80-BF) or next to a repaired character (one the code
    page cannot show). Asked only of text that was mojibake, so a genuine "é»" in the same row
    can make a repair count as incomplete, never a clean row as mojibake."""
    shown = _byte_maps().get(codepage)
    if shown is None:
        return any(_leftover(fixed, cp) for cp in SINGLE_BYTE)
    for a, b in zip(fixed, fixed[1:]):
        lead = shown.get(a)
        if lead is None or not 0xC2 <= lead <= 0xF4 or b.isascii():
            continue
        follow = shown.get(b)
        if follow is None or 0x80 <= follow <= 0xBF:
            return True
    return False


def _short_single_byte(text: str) -> tuple[str, str] | None:
    """(codepage, repaired) for short mojibake ftfy's heuristic has too little context for
    ("긍정" read as cp1253 is "κΈμ •"): a run of characters one code page shows whose bytes
    are complete UTF-8 of at least two CJK/Hangul/kana characters (3-byte sequences). Genuine
    Latin text never makes such a run: a lone "é »" decodes to at most one character, which is
    how the old home-made check raised false alarms on French and German quotes."""
    for codepage in SINGLE_BYTE:
        shown, repaired, found = _byte_maps()[codepage], text, False
        for run in _RUN.findall(text):
            try:
                decoded = bytes(shown[c] for c in run).decode("utf-8")
            except (KeyError, UnicodeDecodeError):
                continue
            if len(decoded) >= 2 and all(ord(c) >= 0x800 and c.isprintable() for c in decoded):
                repaired, found = repaired.replace(run, decoded, 1), True
        if found:
            return codepage, repaired
    return None


def _codepage(steps: Any, text: str) -> str:
    """The code page named by ftfy's explanation, or the first that can show every character."""
    for action, arg in steps or ():
        if action == "encode":
            name = str(arg).replace("sloppy-", "").replace("windows-", "cp")
            return {"latin-1": "latin-1", "iso-8859-1": "latin-1"}.get(name, name)
    chars = {c for c in text if ord(c) > 0x7F and c != "\ufffd" and not 0x80 <= ord(c) <= 0x9F}
    for codepage in SINGLE_BYTE:
        try:
            "".join(chars).encode(codepage)
            return codepage
        except UnicodeEncodeError:
            continue
    return "a single-byte code page"  # _leftover then checks against each of SINGLE_BYTE


def _cp949(text: str) -> tuple[str, bool] | None:
    """(repaired, complete) if `text` reads as UTF-8 bytes shown in cp949, else None.

    ftfy does not handle cp949. A misread leaves mostly Hangul outside KS X 1001 and U+FFFD
    (genuine text: almost none): that decides. The repair re-encodes each piece (cut at ASCII
    and U+FFFD, so a lost byte breaks only its own character) with cp949 and decodes it as
    UTF-8; where bytes were dropped the pieces no longer line up with characters, and the text
    is kept as it is, marked not repairable.
    """
    letters = _CP949_LETTERS.findall(text)
    marks = sum(1 for c in letters if c in _UHC_ONLY_HANGUL or c == "\ufffd")
    if marks < 2 or marks < _CP949_MIN_MARK_SHARE * len(letters):
        return None
    out, real, broken = [], 0, 0
    for piece in _CP949_PIECES.split(text):
        if not piece or piece.isascii() or piece == "\ufffd":
            out.append(piece)
            continue
        try:
            fixed = piece.encode("cp949").decode("utf-8", errors="replace")
        except UnicodeEncodeError:
            return None  # a character cp949 cannot show: not a cp949 misread
        real += sum(1 for c in fixed if ord(c) >= 0x800 and c != "\ufffd" and c.isprintable())
        broken += fixed.count("\ufffd")
        out.append(fixed)
    if real < 2 or real < broken:
        return text, False  # bytes were lost: the pieces do not decode
    repaired = "".join(out)
    return repaired, "\ufffd" not in repaired


def suspect_mask(values: Any) -> np.ndarray:
    """For an Arrow string array: which values `repair` would look at (contain a character of
    _SUSPECT), tested by Arrow's regex engine over the whole column in one call instead of
    once per value in Python. The class holds only literal characters and ranges, which RE2 and
    `re` read alike (tests compare the two on every code point). Nulls are False."""
    import pyarrow.compute as pc

    found = pc.match_substring_regex(values, _SUSPECT.pattern).fill_null(False)
    return np.asarray(found.to_numpy(zero_copy_only=False), dtype=bool)


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
        found = repair(text)
        if found is None:
            continue
        affected.add(row)
        if len(examples) < max_examples:
            examples.append(Mojibake(row, column, found.codepage, text, found.repaired, found.complete))
    return MojibakeReport(len(checked) if rows_checked is None else rows_checked, len(affected), examples)


def describe(example: Mojibake, limit: int = 40) -> str:
    """'"ë°°ì†¡" looks like UTF-8 read as cp1252; it should read "배송"' (shortened)."""
    lost = "" if example.complete else " (some bytes were lost: not fully repairable)"
    return (
        f"{_clip(example.text, limit)!r} looks like UTF-8 text decoded as {example.codepage} and saved again; "
        f"repaired it reads {_clip(example.repaired, limit)!r}{lost}"
    )


def _clip(text: str, limit: int) -> str:
    match = _RUN.search(text)
    start = max(0, match.start() - 5) if match else 0
    piece = text[start : start + limit]
    return ("…" if start else "") + piece + ("…" if start + limit < len(text) else "")
