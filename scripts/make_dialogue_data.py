#!/usr/bin/env python
"""Write small, deterministic Korean dialogue-summarization and instruction-classification data.

    python scripts/make_dialogue_data.py [--out examples/data] [--rows 300] [--seed 0]

Files (CSV, UTF-8):
- dialogue_train.csv / dialogue_test.csv: id, dialogue, summary (test has no summary column;
  dialogue_test_labeled.csv keeps it for `tunelab evaluate`).
- sft_spam_train.csv / sft_spam_test.csv: id, instruction, response (spam | ham).
The summaries are a fixed function of the dialogue's slots (who, when, where, what), so even a
tiny model can learn the mapping in a few hundred steps: the data is for trying the pipeline,
not for judging models.
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

NAMES = ["민수", "지영", "서준", "하은", "도윤", "수아", "예준", "지민", "Tom", "Anna"]
DAYS = ["내일", "모레", "토요일", "일요일", "금요일 저녁", "다음 주 월요일"]
TIMES = ["오전 10시", "정오", "오후 2시", "오후 3시", "저녁 7시", "밤 9시"]
PLACES = ["카페", "도서관", "공원", "영화관", "회사 앞", "역 근처 식당"]
ACTIVITIES = [
    ("영화를 보기로", "영화 보는 거"),
    ("점심을 먹기로", "점심 먹는 거"),
    ("회의를 하기로", "회의하는 거"),
    ("공부를 하기로", "같이 공부하는 거"),
    ("산책을 하기로", "산책하는 거"),
    ("쇼핑을 하기로", "쇼핑하는 거"),
]
OPENERS = ["안녕하세요", "저기요", "혹시 시간 있어요?", "오랜만이에요", "잠깐 얘기할 수 있어요?"]
ACCEPTS = ["좋아요", "네 그렇게 해요", "괜찮아요", "완전 좋아요", "그래요"]

# Messages are built from templates and slots so that every instruction is unique: an example set
# whose validation rows repeat training rows would score memorisation, not classification.
SPAM = [
    "축하합니다! {amount} 당첨되셨습니다 {hours}시간 안에 클릭하세요",
    "무료 {item} 쿠폰 지급! 링크에서 {hours}시간 안에 받으세요",
    "대출 한도 {amount} 무료 조회, 지금 신청하세요",
    "WIN a free {item_en} now, only {hours} hours left, click the link",
    "Limited offer: claim your {amount_en} prize today",
    "고수익 보장 투자 {amount}, 오늘만 가입 가능",
    "URGENT: your account will be closed in {hours} hours, verify here",
]
HAM = [
    "{day} 회의는 {time}에 시작합니다",
    "{item} 배송이 아직 도착하지 않았어요 확인 부탁드립니다",
    "{day} {time}에 같이 밥 먹을래?",
    "Can we move the meeting to {day_en}?",
    "{name}님, 비밀번호를 잊어버렸어요 초기화해 주세요",
    "{item} 사진 보내줘서 고마워",
    "I will be late by {hours} minutes, sorry {name_en}",
]
SLOTS = {
    "amount": ["100만원", "50만원", "300만원", "1,000만원", "20만원"],
    "amount_en": ["$100", "$500", "$1,000", "$50", "$250"],
    "hours": ["2", "3", "12", "24", "48"],
    "item": ["커피", "치킨", "영화", "주유", "편의점", "책"],
    "item_en": ["iPhone", "laptop", "gift card", "TV", "trip"],
    "day": DAYS,
    "time": TIMES,
    "day_en": ["Monday", "Tuesday", "Friday", "Saturday", "next week"],
    "name": NAMES[:8],
    "name_en": ["Tom", "Anna", "team", "everyone"],
}


def dialogue_row(rng: random.Random, i: int) -> dict[str, str]:
    a, b = rng.sample(NAMES, 2)
    day, time, place = rng.choice(DAYS), rng.choice(TIMES), rng.choice(PLACES)
    act_done, act_ask = rng.choice(ACTIVITIES)
    turns = [
        f"#Person1#: {rng.choice(OPENERS)} {b}님, {day} {time}에 {act_ask} 어때요?",
        f"#Person2#: {rng.choice(ACCEPTS)}. 어디서 만날까요?",
        f"#Person1#: {place}에서 만나요.",
        f"#Person2#: 네, {day} {time}에 {place}에서 봬요.",
    ]
    summary = f"{a}와 {b}는 {day} {time}에 {place}에서 {act_done} 했다."
    return {"id": f"d{i:04d}", "dialogue": "\n".join(turns), "summary": summary}


def sft_row(rng: random.Random, i: int, seen: set[str]) -> dict[str, str]:
    """One message, never the same text as an earlier row (`seen` holds the messages so far)."""
    while True:
        spam = rng.random() < 0.5
        msg = rng.choice(SPAM if spam else HAM).format(**{k: rng.choice(v) for k, v in SLOTS.items()})
        if rng.random() < 0.3:
            msg = f"{msg} {rng.choice(['!!', '~', '^^'])}"
        if msg not in seen:
            seen.add(msg)
            break
    return {
        "id": f"s{i:04d}",
        "instruction": f"다음 메시지가 스팸이면 spam, 아니면 ham으로 답하세요.\n메시지: {msg}",
        "response": "spam" if spam else "ham",
    }


def write_csv(path: Path, rows: list[dict[str, str]], columns: list[str]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)  # never a half-written data file


def main(out: Path, rows: int = 300, test_rows: int = 40, seed: int = 0) -> None:
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    dialogues = [dialogue_row(rng, i) for i in range(rows + test_rows)]
    write_csv(out / "dialogue_train.csv", dialogues[:rows], ["id", "dialogue", "summary"])
    write_csv(out / "dialogue_test.csv", dialogues[rows:], ["id", "dialogue"])
    write_csv(out / "dialogue_test_labeled.csv", dialogues[rows:], ["id", "dialogue", "summary"])
    seen: set[str] = set()
    sft = [sft_row(rng, i, seen) for i in range(rows + test_rows)]
    write_csv(out / "sft_spam_train.csv", sft[:rows], ["id", "instruction", "response"])
    write_csv(out / "sft_spam_test.csv", sft[rows:], ["id", "instruction", "response"])
    print(f"wrote {rows}+{test_rows} dialogue and sft rows to {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("examples/data"))
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--test-rows", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    a = parser.parse_args()
    main(a.out, a.rows, a.test_rows, a.seed)
