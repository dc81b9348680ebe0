"""ROUGE with pluggable tokenizers (evaluation/rouge.py)."""

from __future__ import annotations

import pytest
from rouge_score import rouge_scorer

from tunelab.evaluation import rouge as rouge_mod
from tunelab.evaluation.rouge import KiwiTokenizer, resolve_tokenizer_name, rouge, sample_scores

EN_PRED = ["the cat sat on the mat", "a quick brown fox jumped", "nothing in common here"]
EN_REF = ["the cat was sitting on the mat", "the quick brown fox jumps over the dog", "totally different words"]


def test_english_default_equals_rouge_score_exactly():
    ours = rouge(EN_PRED, EN_REF, tokenizer="default")
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
    scores = [scorer.score(r, p) for p, r in zip(EN_PRED, EN_REF)]
    for t in ("rouge1", "rouge2", "rougeL"):
        expected = sum(s[t].fmeasure for s in scores) / len(scores)
        assert ours[t] == expected
    assert ours["rouge_sum"] == pytest.approx(ours["rouge1"] + ours["rouge2"] + ours["rougeL"])
    assert 0 < ours["rouge1"] < 1


def test_auto_picks_default_for_english_and_kiwi_for_korean():
    assert resolve_tokenizer_name("auto", EN_REF) == "default"
    assert resolve_tokenizer_name("auto", ["두 사람이 저녁 약속을 정했다"]) == "kiwi"


@pytest.mark.parametrize("tok", ["kiwi", "whitespace", "char", "auto"])
def test_identical_korean_is_one_and_disjoint_is_zero(tok):
    same = rouge(["회의는 내일 오후 세 시에 시작합니다"], ["회의는 내일 오후 세 시에 시작합니다"], tokenizer=tok)
    assert same["rouge1"] == same["rouge2"] == same["rougeL"] == 1.0
    assert same["rouge_sum"] == 3.0
    disjoint = rouge(["안녕"], ["배송 확인"], tokenizer=tok)
    assert disjoint["rouge1"] == disjoint["rouge2"] == disjoint["rougeL"] == 0.0


def test_default_tokenizer_drops_hangul_which_is_why_we_have_kiwi():
    # The failure we guard against: rouge_score's default gives 0 for identical Korean text.
    assert rouge(["안녕하세요"], ["안녕하세요"], tokenizer="default")["rouge1"] == 0.0


def test_hand_computed_korean_example():
    ref = "두 사람이 저녁 약속을 정했다"
    pred = "두 사람은 점심 약속을 잡았다"
    # Kiwi morphemes, written out:
    ref_m = ["두", "사람", "이", "저녁", "약속", "을", "정하", "었", "다"]
    pred_m = ["두", "사람", "은", "점심", "약속", "을", "잡", "었", "다"]
    assert KiwiTokenizer().tokenize(ref) == ref_m
    assert KiwiTokenizer().tokenize(pred) == pred_m
    # Unigrams: common {두, 사람, 약속, 을, 었, 다} = 6 of 9 each side -> P = R = F = 6/9.
    # Bigrams (8 each): common (두,사람) (약속,을) (었,다) = 3 -> F = 3/8.
    # LCS: 두 사람 약속 을 었 다 = 6 -> F = 6/9.
    got = rouge([pred], [ref], tokenizer="kiwi")
    assert got["rouge1"] == pytest.approx(6 / 9)
    assert got["rouge2"] == pytest.approx(3 / 8)
    assert got["rougeL"] == pytest.approx(6 / 9)
    assert got["rouge_sum"] == pytest.approx(6 / 9 + 3 / 8 + 6 / 9)
    assert got["rouge_tokenizer"] == "kiwi"


def test_whitespace_and_char_tokenizers_by_hand():
    # whitespace: pred [a, b, c], ref [a, c] -> R1 P=2/3 R=1 F=0.8
    assert rouge(["A b c"], ["a c"], tokenizer="whitespace")["rouge1"] == pytest.approx(0.8)
    # char: "가나" vs "가다" -> 1 of 2 chars common -> F = 0.5; bigram none
    got = rouge(["가나"], ["가 다"], tokenizer="char")
    assert got["rouge1"] == pytest.approx(0.5)
    assert got["rouge2"] == 0.0


def test_multi_reference_max_and_mean():
    preds = ["a b c d", "x y"]
    refs = [["a b c d", "e f g h"], ["x y"]]
    mx = rouge(preds, refs, tokenizer="whitespace", aggregate="max")
    mean = rouge(preds, refs, tokenizer="whitespace", aggregate="mean")
    # sample 0: F1 = 1.0 vs ref 1, 0.0 vs ref 2; sample 1: 1.0
    assert mx["rouge1"] == pytest.approx((1.0 + 1.0) / 2)
    assert mean["rouge1"] == pytest.approx((0.5 + 1.0) / 2)
    _, rows = sample_scores(preds, refs, tokenizer="whitespace", aggregate="mean")
    assert rows[0]["rouge2"] == pytest.approx(0.5)
    # single-string references behave as one-element lists
    assert rouge(["x y"], ["x y"], tokenizer="whitespace") == rouge(["x y"], [["x y"]], tokenizer="whitespace")


def test_max_is_taken_per_metric():
    # ref A matches unigrams best, ref B matches bigrams best: each metric takes its own best.
    pred = "a b c d"
    ref_a = "d c b a"  # R1 = 1, R2 = 0
    ref_b = "a b x y z w"  # R1 = 2/4 & 2/6 -> 0.4, R2: (a,b) 1 of 3 / 1 of 5 -> 0.25
    got = rouge([pred], [[ref_a, ref_b]], tokenizer="whitespace", aggregate="max")
    assert got["rouge1"] == pytest.approx(1.0)
    assert got["rouge2"] == pytest.approx(0.25)


def test_empty_prediction_scores_zero_and_missing_reference_is_an_error():
    from tunelab.errors import DataError

    assert rouge([""], ["무엇이든"], tokenizer="kiwi")["rouge1"] == 0.0
    with pytest.raises(DataError, match="row 0"):
        rouge(["a"], [[]], tokenizer="whitespace")


# DialogSum-style Korean summaries: speaker tags and English terms make Hangul a minority of the
# letters, which is exactly where a "mostly Hangul" rule used to pick rouge_score's tokenizer and
# score the tags and English words alone.
TAGGED_REFS = [
    "#Person1#은 #Person2#에게 LoRA fine-tuning 결과를 설명한다.",
    "#Person2#는 GPU memory 부족으로 batch size를 줄였다.",
    "#Person1#과 #Person2#는 Qwen3 model을 비교한다.",
]
TAGGED_PREDS = [
    "#Person1#은 #Person2#에게 LoRA 결과를 말한다.",
    "#Person2#는 GPU memory 때문에 batch size를 늘렸다.",
    "#Person1#과 #Person2#는 model을 고른다.",
]
MIXED_REFS = ["LoRA로 GPU 메모리를 줄였다", "Transformer encoder와 decoder를 비교했다"]
MIXED_PREDS = ["LoRA로 GPU 사용량을 줄였다", "Transformer encoder와 decoder를 설명했다"]


@pytest.mark.parametrize("preds,refs", [(TAGGED_PREDS, TAGGED_REFS), (MIXED_PREDS, MIXED_REFS)])
def test_auto_scores_tagged_and_mixed_korean_like_the_korean_tokenizer(preds, refs):
    auto = rouge(preds, refs, tokenizer="auto")
    kiwi = rouge(preds, refs, tokenizer="kiwi")
    assert auto["rouge_tokenizer"] == "kiwi"
    assert {k: auto[k] for k in ("rouge1", "rouge2", "rougeL")} == {k: kiwi[k] for k in ("rouge1", "rouge2", "rougeL")}
    # what the old "mostly Hangul" rule gave: rouge_score's tokenizer, Korean deleted, another score
    assert rouge(preds, refs, tokenizer="default")["rouge1"] != pytest.approx(kiwi["rouge1"])


def test_auto_keeps_every_script():
    assert resolve_tokenizer_name("auto", ["the cat sat"]) == "default"  # ASCII only: reference ROUGE
    assert resolve_tokenizer_name("auto", ["#Person1#: hi 네"]) == "kiwi"  # one Hangul word is enough
    assert resolve_tokenizer_name("auto", ["un café crème"]) == "kiwi"  # rouge_score would drop é
    assert KiwiTokenizer().tokenize("Привет мир, café 你好") == ["привет", "мир", "café", "你好"]


def test_speaker_tags_are_one_token_and_the_particle_after_them_is_split():
    tokens = KiwiTokenizer().tokenize("#Person1#은 #Person2#에게 #PhoneNumber#로 연락한다")
    assert tokens[:6] == ["#person1#", "은", "#person2#", "에게", "#phonenumber#", "로"]
    assert KiwiTokenizer().tokenize("#Person1#: 안녕") == ["#person1#", "안녕"]
    assert KiwiTokenizer().tokenize("#Person1#abc") == ["#person1#", "abc"]  # no merge with Latin
    # Different speakers: the tags must not match each other through a shared "#", "person", "#".
    pred, ref = "#Person2#는 사과를 샀다", "#Person1#은 사과를 샀다"
    assert KiwiTokenizer().tokenize(ref) == ["#person1#", "은", "사과", "를", "사", "었", "다"]
    got = rouge([pred], [ref], tokenizer="kiwi")
    assert got["rouge1"] == pytest.approx(5 / 7)  # 사과 를 사 었 다 of 7 tokens each side
    assert got["rouge2"] == pytest.approx(4 / 6)  # (사과,를) (를,사) (사,었) (었,다) of 6 bigrams


def test_korean_tokenizer_numbers_punctuation_and_english():
    tok = KiwiTokenizer().tokenize
    assert tok("3.5GB 줄였다") == ["3.5", "gb", "줄이", "었", "다"]  # a number is one token
    assert tok("10:30에 2024년") == ["10:30", "에", "2024", "년"]
    assert tok("좋다. 정말! (진짜), 50%") == ["좋", "다", "정말", "진짜", "50"]  # punctuation dropped
    assert tok("LoRA로 GPU를") == ["lora", "로", "gpu", "를"]  # English: whole words, lowercased
    assert tok("GPT-4o") == ["gpt", "4", "o"]
    # punctuation never counts as a match: only the full stops are shared here
    assert rouge(["사과."], ["바나나."], tokenizer="kiwi")["rouge1"] == 0.0


def test_a_tokenizer_that_drops_letters_warns_once_with_the_share_and_the_fix(monkeypatch, capsys):
    monkeypatch.setattr(rouge_mod, "_warned", set())
    rouge(TAGGED_PREDS, TAGGED_REFS, tokenizer="default")
    err = capsys.readouterr().err
    assert "'default' drops" in err and "% of the letters" in err and "tokenizer: auto" in err
    share = rouge_mod.lost_letter_share("default", TAGGED_REFS)
    assert 0.1 < share < 0.9 and f"{share:.0%}" in err
    rouge(TAGGED_PREDS, TAGGED_REFS, tokenizer="default")
    assert "drops" not in capsys.readouterr().err  # once per process
    rouge(TAGGED_PREDS, TAGGED_REFS, tokenizer="auto")
    rouge(EN_PRED, EN_REF, tokenizer="default")
    assert "drops" not in capsys.readouterr().err  # nothing lost: no warning
    assert rouge_mod.lost_letter_share("kiwi", TAGGED_REFS) == 0.0
