"""The mojibake test corpus, made the way real mojibake is made.

Korean, Japanese, Chinese and Greek sentences are encoded as UTF-8 and decoded with a legacy code
page (cp1252, cp1253, cp1254, latin-1, cp949), as an editor or a database driver does when it
opens a UTF-8 file with the wrong code page; the result is what gets saved again. Windows code
pages leave some bytes undefined, and tools deal with them in three ways, each a variant here:
`replace` (U+FFFD, Python's and .NET's default), `ignore` (dropped) and `c1` (kept as the C1
control of the same number, as browsers and ftfy's "sloppy" codecs do). latin-1 defines every
byte, so it has one variant. The clean corpus is tests/mojibake_corpus/clean.txt.
"""

from __future__ import annotations

from pathlib import Path

SOURCES = {
    "ko": [
        "배송이 아직 도착하지 않았어요",
        "실패**: 5/6 모델",
        "미최적화 상태입니다",
        "비밀번호를 잊어버렸어요",
        "회의는 내일 오후 세 시에 시작합니다",
        "안녕하세요 😀 반갑습니다",
        "주문 번호 12345 확인 부탁드립니다",
        "환불 요청합니다",
    ],
    "ja": [
        "東京は今日晴れです",
        "ご注文ありがとうございます",
        "パスワードを忘れました",
        "明日の会議は午後三時からです",
        "配送状況を確認してください",
    ],
    "zh": ["今天天气很好", "请确认您的订单号码", "我忘记了密码", "明天下午三点开会", "这个产品质量非常好"],
    "el": [
        "Καλημέρα σας, τι κάνετε;",
        "Η παράδοση καθυστέρησε",
        "Ξέχασα τον κωδικό μου",
        "Ευχαριστώ πολύ για τη βοήθεια",
        "Το προϊόν είναι εξαιρετικό",
    ],
}
CODEPAGES = ("cp1252", "cp1253", "cp1254", "latin-1", "cp949")
VARIANTS = ("replace", "ignore", "c1")
CLEAN_FILE = Path(__file__).parent / "mojibake_corpus" / "clean.txt"


def mangle(text: str, codepage: str, variant: str) -> str:
    """`text` saved as UTF-8, opened as `codepage`; undefined bytes handled as `variant` says."""
    raw = text.encode("utf-8")
    if variant != "c1":
        return raw.decode(codepage, errors=variant)
    out = []
    for byte in raw:
        try:
            out.append(bytes([byte]).decode(codepage))
        except UnicodeDecodeError:
            out.append(chr(byte))  # the C1 control (or latin-1 character) with the byte's number
    return "".join(out)


def lossless(text: str, codepage: str, variant: str) -> bool:
    """Whether every byte of `text` survived `mangle` (so the exact original is recoverable)."""
    if codepage == "cp949":
        return False  # double-byte: pairs that do not decode lose both bytes
    if variant == "c1":
        return True
    try:
        text.encode("utf-8").decode(codepage)
        return True
    except UnicodeDecodeError:
        return False


def mangled_corpus() -> list[tuple[str, str, str, str, str]]:
    """(id, original, code page, variant, mangled) for every distinct mangled string."""
    rows, seen = [], set()
    for lang, texts in SOURCES.items():
        for i, text in enumerate(texts):
            for codepage in CODEPAGES:
                for variant in VARIANTS if codepage not in ("latin-1",) else ("replace",):
                    if codepage == "cp949" and variant == "c1":
                        continue  # a double-byte decoder has no byte-for-character fallback
                    mangled = mangle(text, codepage, variant)
                    if mangled == text or (codepage, mangled) in seen:
                        continue  # e.g. `ignore` and `replace` alike when no byte was undefined
                    seen.add((codepage, mangled))
                    rows.append((f"{lang}{i}-{codepage}-{variant}", text, codepage, variant, mangled))
    return rows


def clean_corpus() -> list[str]:
    lines = CLEAN_FILE.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line and not line.startswith("# ")]
