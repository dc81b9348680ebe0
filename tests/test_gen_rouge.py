"""ROUGE with pluggable tokenizers (evaluation/rouge.py)."""

from __future__ import annotations

import pytest
from rouge_score import rouge_scorer

from tunelab.evaluation.rouge import KiwiTokenizer, hangul_share, resolve_tokenizer_name, rouge, sample_scores

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
    assert hangul_share(["abc 가나"]) == pytest.approx(2 / 5)


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
