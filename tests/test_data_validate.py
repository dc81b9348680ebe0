"""validate_frame and the mojibake detector."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tunelab.data.mojibake import repair_text, scan
from tunelab.data.readers import read_table
from tunelab.data.roles import Roles
from tunelab.data.validate import validate_frame
from tunelab.errors import DataError

ROLES = Roles(text=("text",), label="label", id="id", keys=("text",))


def _frame(rows: list[dict], kind: str = "line") -> pd.DataFrame:
    df = pd.DataFrame(rows, dtype=object)
    df.index = range(2, len(df) + 2) if kind == "line" else range(1, len(df) + 1)
    df.attrs["row_kind"] = kind
    return df


def _rows(labels: list[str]) -> list[dict]:
    return [{"id": str(i), "text": f"text {i}", "label": lab} for i, lab in enumerate(labels)]


@pytest.mark.parametrize("value", ["nan", "NaN", "null", "None", "", "  "])
def test_nan_like_label_is_null(value):
    df = _frame(_rows(["a", "b", value, "a"]))
    with pytest.raises(DataError, match=r"data\.csv:4:label: label is .* at line 4 of the file"):
        validate_frame(df, "data.csv", ROLES)


def test_parquet_rows_are_named_as_data_rows():
    df = _frame(_rows(["a", None]), kind="row")
    with pytest.raises(DataError, match=r"d\.parquet:2:label: label is missing at data row 2"):
        validate_frame(df, "d.parquet", ROLES)


def test_null_text_and_missing_id_and_duplicate_id():
    df = _frame([{"id": "1", "text": None, "label": "a"}])
    with pytest.raises(DataError, match=r"d\.csv:2:text: text is missing"):
        validate_frame(df, "d.csv", ROLES)
    df = _frame([{"id": "1", "text": "x", "label": "a"}, {"id": None, "text": "y", "label": "a"}])
    with pytest.raises(DataError, match=r"d\.csv:3:id: id is missing"):
        validate_frame(df, "d.csv", ROLES)
    df = _frame(
        [
            {"id": "7", "text": "x", "label": "a"},
            {"id": "8", "text": "y", "label": "a"},
            {"id": "7", "text": "z", "label": "a"},
        ]
    )
    with pytest.raises(DataError, match=r"d\.csv:4:id: duplicate id '7' at line 4 .*first seen at line 2"):
        validate_frame(df, "d.csv", ROLES)


def test_missing_column_suggests_closest():
    df = _frame([{"id": "1", "Text": "x", "label": "a"}])
    with pytest.raises(DataError, match=r"d\.csv:1:text: required column 'text' is missing") as info:
        validate_frame(df, "d.csv", ROLES)
    assert "'Text'" in info.value.hint


def test_absent_id_column_is_fine_and_text_pair_is_checked():
    df = _frame([{"text": "x", "pair": "", "label": "a"}, {"text": "y", "pair": "", "label": "a"}])
    assert validate_frame(df, "d.csv", Roles(text=("text",), label="label", id="id")) == []
    with pytest.raises(DataError, match=r"d\.csv:2:pair: pair is empty"):
        validate_frame(df, "d.csv", Roles(text=("text", "pair"), label="label", id="id"))


def test_warnings_single_example_imbalance_conflict():
    rows = _rows(["big"] * 40 + ["small"] * 2 + ["solo"])
    rows.append({"id": "x1", "text": "same words", "label": "big"})
    rows.append({"id": "x2", "text": "same words", "label": "small"})
    warnings = validate_frame(_frame(rows), "d.csv", ROLES, imbalance_warn_ratio=20)
    text = "\n".join(warnings)
    assert "1 label(s) with a single example: 'solo' (line 44)" in text
    assert "heavy class imbalance: 'big' has 41 rows, 'solo' has 1" in text
    assert "1 identical input(s) carry different labels; e.g. 'same words' at lines 45, 46" in text


def test_balanced_data_has_no_warnings():
    assert validate_frame(_frame(_rows(["a", "b"] * 10)), "d.csv", ROLES) == []


# ------------------------------------------------------------------------------------ mojibake
KOREAN = [
    "배송이 아직 도착하지 않았어요",
    "실제로 회의는 내일 오후 세 시에 시작합니다",
    "안녕하세요 😀",
    "비밀번호를 잊어버렸어요",
]


@pytest.mark.parametrize("codepage", ["cp1252", "cp1253", "cp1254", "latin-1"])
@pytest.mark.parametrize("text", KOREAN)
def test_mojibake_is_detected_and_repaired(codepage, text):
    # errors="replace" loses the cp125x-undefined bytes, like many real tools do.
    mangled = text.encode("utf-8").decode(codepage, errors="replace")
    found = repair_text(mangled)
    assert found is not None, mangled
    if "\ufffd" not in mangled:
        assert found[1] == text
    else:  # lossy: still detected, and the repair recovers Hangul (lost bytes show as U+FFFD)
        assert any("\uac00" <= c <= "\ud7a3" for c in found[1]), found


def test_mojibake_known_examples():
    assert repair_text("ë°°ì†¡") == ("cp1252", "배송")
    assert repair_text("μ‹¤") == ("cp1253", "실")
    assert repair_text("cafÃ©") == ("latin-1", "café")  # ftfy names the plainer code page that explains it
    assert repair_text("諛곗넚 二쇱냼") == ("cp949", "배송 주소")  # Korean UTF-8 read as cp949


NORMAL = [
    *KOREAN,
    "the quick brown fox",
    "Café à la crème, déjà vu, naïve façade",
    "Größe Übergröße Straße Fußgänger",
    "καλημέρα σας, ΚΑΛΗΜΕΡΑ",
    "Привет мир",
    "😀🎉👍 emoji 🇰🇷 👩‍👩‍👧",
    "日本語のテキスト 中文",
    "¿Qué tal? ¡Hola! señor año",
    "Ça coûte 10 € — très cher… « oui »",
    "İstanbul'da güzel bir gün ğüşıöç",
    "°C ± ½ ² ³ µ ¶ · ©®™",
    "“smart quotes” ‘single’ – dash",
    # Hangul whose cp949 bytes happen to be valid 2-byte UTF-8 ("징짝" -> "¡¦"): not mojibake.
    "청첩장을 찾았어요 짧은 책 채점 징짝 처첨",
    "Ørsted Åland Ærø",
    "São Paulo AÇÃO",
    "ÀÉÎÕÜ àéîõü Ñoño",
    "1½ cups, 3° angle",
]


@pytest.mark.parametrize("text", NORMAL)
def test_no_false_positive_on_normal_text(text):
    assert repair_text(text) is None


def test_scan_counts_rows_once_and_share():
    bad = "배송".encode().decode("cp1252")
    cells = [(1, "text", bad), (1, "label", bad), (2, "text", "fine"), (3, "text", "좋아요"), (4, "text", bad)]
    report = scan(cells)
    assert (report.rows_checked, report.rows_affected) == (4, 2)
    assert report.share == 0.5 and report.examples[0].repaired == "배송"


def test_mojibake_error_and_allowed_share(tmp_path):
    rows = (
        ["id,text,label"]
        + [f"{i},정상 문장 {i},a" for i in range(9)]
        + ["9," + "배송 주소".encode().decode("cp1252") + ",a"]
    )
    p = tmp_path / "m.csv"
    p.write_text("\n".join(rows) + "\n", encoding="utf-8")
    df = read_table(p)
    with pytest.raises(DataError, match=r"m\.csv:11:text: mojibake in 1 of 10 rows \(10\.0%\).*'배송 주소'") as info:
        validate_frame(df, str(p), ROLES)
    assert "mojibake_max_share" in info.value.hint
    warnings = validate_frame(df, str(p), ROLES, mojibake_max_share=0.2)
    assert any("mojibake in 1 of 10 rows" in w for w in warnings)


# Genuine text never repairs: Hangul (incl. syllables whose cp949 bytes are valid UTF-8)
# and accented Latin letters (a UTF-8 continuation byte in cp1252 is never a letter but ª º µ).
# Genuine Korean is written with the 2,350 syllables of KS X 1001; a string made mostly of the
# other 8,822 is what a cp949 misread produces, and is reported (data/mojibake.py, `_cp949`).
_HANGUL = st.sampled_from(sorted(c for c in map(chr, range(0xAC00, 0xD7A4)) if len(c.encode("euc-kr")) == 2))
# Without Ã and Â: "Ã " and "Â " are how à and the no-break space look as cp1252 mojibake, which
# ftfy is built to repair; letter soup that happens to contain them is indistinguishable.
_LATIN = st.sampled_from([c for c in map(chr, range(0xC0, 0x100)) if c.isalpha() and c not in "ÃÂ"] + list("abcXYZ "))


@settings(max_examples=200, deadline=None)
@given(st.text(st.one_of(_HANGUL, st.sampled_from(" .,!?0")), min_size=1, max_size=30))
def test_property_no_false_positive_on_hangul(text):
    assert repair_text(text) is None


@settings(max_examples=200, deadline=None)
@given(st.text(_LATIN, min_size=1, max_size=30))
def test_property_no_false_positive_on_accented_latin(text):
    assert repair_text(text) is None


# At least two syllables: one mangled syllable ("가" -> "ê°€") is too little to tell from
# genuine accented text, by ftfy or by our short-run check (data/mojibake.py).
@settings(max_examples=100, deadline=None)
@given(
    st.text(st.one_of(_HANGUL, st.sampled_from(" .,")), min_size=2, max_size=20).filter(
        lambda t: len(t.strip(" .,")) >= 2 and sum(c not in " .," for c in t) >= 2
    )
)
def test_property_cp1252_mangled_hangul_is_detected(text):
    mangled = text.encode("utf-8").decode("cp1252", errors="replace")
    assert repair_text(mangled) is not None


def _scan_every_cell(df: pd.DataFrame, columns: list[str]):
    """The reference: every str cell through scan(), column by column (what validate did before
    it pre-selected non-ASCII cells)."""
    return scan((row, c, v) for c in columns for row, v in df[c].items() if isinstance(v, str))


@pytest.mark.parametrize("dtype", [object, "str"])
def test_vectorised_mojibake_scan_matches_every_cell_scan(dtype):
    from tunelab.data.validate import _check_mojibake

    bad, bad2 = "배송".encode().decode("cp1252"), "실".encode().decode("cp1253")
    texts = ["fine", bad, "좋아요", None, "", "cafÃ©", "plain", bad2, "naïve", bad, "ascii only"]
    labels = ["a", "b", bad2, "a", "b", "a", None, "a", "b", "a", bad]
    df = pd.DataFrame({"text": pd.Series(texts, dtype=dtype), "label": pd.Series(labels, dtype=dtype)})
    df.index = range(2, 2 + len(texts))
    df.attrs["row_kind"] = "line"
    reference = _scan_every_cell(df, ["text", "label"])
    assert reference.rows_affected == 6 and reference.rows_checked == 11  # the case is not trivial
    (warning,) = _check_mojibake(df, "f.csv", ROLES, max_share=1.0)
    first = reference.examples[0]
    assert warning.startswith(f"f.csv:{first.row}:{first.column}: mojibake in 6 of 11 rows")


def test_label_counts_match_counter_order():
    from collections import Counter

    from tunelab.data.validate import label_counts

    labels = pd.Series(["b", "a", "b", "c", "a", "b", "d"], dtype="str")
    assert list(label_counts(labels).items()) == list(Counter(labels.tolist()).items())
    assert label_counts(labels).most_common()[-1] == Counter(labels.tolist()).most_common()[-1]


def test_arrow_suspect_mask_agrees_with_python_regex_on_every_code_point():
    import pyarrow as pa

    from tunelab.data import mojibake

    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]  # surrogates are not UTF-8
    arrow = mojibake.suspect_mask(pa.array(chars))
    python = [mojibake._SUSPECT.search(c) is not None for c in chars]
    assert arrow.sum() > 9_000  # the class is not empty (Hangul outside KS X 1001 alone is 8,822)
    assert arrow.tolist() == python
    assert mojibake.suspect_mask(pa.array(["abc", None, "xë°°y"])).tolist() == [False, False, True]


@pytest.mark.parametrize("keys", [["a"], ["a", "b"]])
def test_clashing_keys_match_groupby_nunique(keys):
    import random

    import numpy as np

    from tunelab.data.validate import _clashing_keys

    def reference(df):  # what _conflicts computed before: groupby nunique, first row per key
        n = df.groupby(keys, sort=False)["l"].nunique()
        rows = []
        for key in n[n > 1].index:
            key = key if isinstance(key, tuple) else (key,)
            mask = np.ones(len(df), dtype=bool)
            for column, value in zip(keys, key):
                mask &= (df[column] == value).fillna(False).to_numpy(dtype=bool)
            rows.append(int(np.flatnonzero(mask)[0]))
        return rows

    rng = random.Random(0)
    found = 0
    for _ in range(200):
        n = rng.randint(0, 30)
        df = pd.DataFrame(
            {
                c: [rng.choice(opts) for _ in range(n)]
                for c, opts in (("a", ["x", "y", "z", None]), ("b", ["p", "q", None]), ("l", ["1", "2", None]))
            },
            dtype=rng.choice([object, "str"]),
        )
        expected = reference(df)
        found += bool(expected)
        assert _clashing_keys(df, keys, "l") == expected
    assert found > 50  # most cases do have clashes


@pytest.mark.parametrize(
    "task,drop,key",
    [
        ({"type": "classification"}, "label", "task.label_column"),
        ({"type": "classification", "text_pair_column": "pair"}, "pair", "task.text_pair_column"),
        ({"type": "sft"}, "instruction", "task.instruction_column"),
        ({"type": "sft"}, "response", "task.response_column"),
        ({"type": "summarization", "extra_target_columns": ["summary2"]}, "summary2", "task.extra_target_columns"),
    ],
)
def test_missing_column_error_names_the_key_that_maps_it(task, drop, key):
    from tunelab.config.loader import validate_config
    from tunelab.data.roles import roles_for

    cfg = validate_config({"task": task, "data": {"train_file": "t.csv"}, "model": {"name_or_path": "m"}})
    row = {"text": "x", "pair": "y", "label": "a", "instruction": "i", "response": "r"}
    row |= {"dialogue": "d", "summary": "s", "summary2": "s2"}
    del row[drop]
    with pytest.raises(DataError) as info:
        validate_frame(_frame([row]), "t.csv", roles_for(cfg.task, "train"))
    assert f"required column '{drop}' is missing ({key} names it" in info.value.message
    assert key in info.value.hint and "task.text_column" not in info.value.hint.replace(key, "")


def _pair_task(template: str | None, pair: str | None = "pair"):
    from tunelab.config.loader import validate_config
    from tunelab.tasks.classification import ClassificationTaskImpl

    task = {"type": "classification", "text_pair_column": pair}
    if template:
        task["template"] = template
    cfg = validate_config({"task": task, "data": {"train_file": "t.csv"}, "model": {"name_or_path": "m"}})
    return ClassificationTaskImpl(cfg, ["a", "b"])


def test_a_pair_in_the_template_is_not_also_the_second_segment():
    from tiny import make_tokenizer

    batch = {"text": ["the cat"], "pair": ["a dog"], "label": ["a"]}
    tok = make_tokenizer()
    texts, pairs = _pair_task("Q: {text} A: {text_pair}").render(batch)
    assert texts == ["Q: the cat A: a dog"] and pairs is None
    enc = _pair_task("Q: {text} A: {text_pair}").tokenize(batch, tok)
    assert enc["input_ids"][0] == tok("Q: the cat A: a dog")["input_ids"]  # the pair once, not twice
    # without {text_pair} the pair is the tokenizer's second segment
    texts, pairs = _pair_task(None).render(batch)
    assert texts == ["the cat"] and pairs == ["a dog"]
    assert _pair_task(None).tokenize(batch, tok)["input_ids"][0] == tok("the cat", "a dog")["input_ids"]


def test_text_pair_in_the_template_needs_the_pair_column():
    from tunelab.errors import ConfigError

    with pytest.raises(ConfigError, match=r"\{text_pair\} but task.text_pair_column is not set"):
        _pair_task("{text} / {text_pair}", pair=None)
