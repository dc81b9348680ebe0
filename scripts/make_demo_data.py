"""Generate the demo dataset: customer-support messages labelled with one of 10 intents.

Deterministic for a given seed. Each intent has many paraphrase templates filled with slot values,
wrapped in greetings/sign-offs, mixed with distractor clauses that mention other intents'
vocabulary ("order", "card", "account" appear everywhere) and perturbed with typos, casing and
punctuation noise, so no single keyword separates the classes and a bag-of-words shortcut is
incomplete. Writes train.csv (labelled), test.csv (labelled; phrased with templates that train.csv never
uses, so it measures generalisation) and test_unlabelled.csv (the same rows without the label,
for `tunelab predict`).

    python scripts/make_demo_data.py --out examples/data/generated --rows 3000 --seed 7
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

INTENTS: dict[str, list[str]] = {
    "cancel_order": [
        "please cancel order {order}",
        "I want to cancel the {item} I ordered {when}",
        "can you stop my order before it ships",
        "I changed my mind about the {item}, cancel it",
        "how do I cancel an order I placed {when}",
        "don't send the {item}, I no longer need it",
        "cancel my purchase {order} please",
        "is it too late to call off order {order}",
        "I ordered the {item} by mistake and want to cancel",
        "scrap my last order, I'll buy it elsewhere",
        "kindly cancel the order for the {item}",
        "I need to cancel before you charge me",
    ],
    "track_order": [
        "where is my {item}",
        "order {order} still hasn't arrived",
        "can you tell me when my package will come",
        "the tracking page for {order} hasn't updated since {when}",
        "my parcel is late, where is it",
        "has my {item} shipped yet",
        "what's the delivery status of order {order}",
        "it said delivery {when} but nothing came",
        "is my order on its way",
        "I'm waiting for the {item}, any update on shipping",
        "track my shipment please",
        "which courier has my package {order}",
    ],
    "refund_request": [
        "I want my money back for the {item}",
        "please refund order {order}",
        "when will I get the refund for my return",
        "I returned the {item} {when} but no refund yet",
        "can I get a refund instead of a replacement",
        "refund the amount to my card please",
        "how long do refunds take to show up",
        "I was promised a refund for {order}",
        "give me a full refund, the {item} is not what I expected",
        "I'd like to return this and get reimbursed",
        "the refund for {order} is missing",
        "still waiting on my reimbursement",
    ],
    "change_address": [
        "I need to change the delivery address for {order}",
        "can you ship the {item} to my office instead",
        "I moved, please update my shipping address",
        "wrong address on my order, can you fix it",
        "send the package to {city} not my old place",
        "how do I edit the address on an order",
        "update my address before the {item} ships",
        "please deliver order {order} to a different address",
        "I typed the wrong street name when ordering",
        "change where my parcel goes please",
        "my new address is in {city}, update it",
        "can I redirect the shipment to my parents' house",
    ],
    "payment_failed": [
        "my card was declined at checkout",
        "payment keeps failing when I try to buy the {item}",
        "why won't you accept my card",
        "the checkout says transaction error",
        "I was charged but the order failed",
        "my payment didn't go through {when}",
        "card got rejected even though it has funds",
        "getting an error paying with {pay}",
        "the payment page freezes and then says failed",
        "can't complete my purchase, payment error",
        "my bank says you blocked the charge",
        "{pay} payment is not working on your site",
    ],
    "password_reset": [
        "I forgot my password",
        "the reset link you sent doesn't work",
        "I can't log in to my account",
        "how do I reset my password",
        "locked out after too many login attempts",
        "the password reset email never arrived",
        "my login isn't working {when}",
        "it says my password is wrong but it's right",
        "need help signing in to my account",
        "I want to change my password",
        "the reset code expired before I could use it",
        "can't access my account, please help me log in",
    ],
    "delete_account": [
        "please delete my account",
        "I want to close my account permanently",
        "remove all my data from your system",
        "how do I deactivate my profile",
        "I don't want an account with you anymore",
        "erase my personal information",
        "close my account and unsubscribe me from everything",
        "can you wipe my account details",
        "I'd like my account terminated",
        "delete my profile and order history",
        "how can I get rid of my account",
        "I want you to forget my data under GDPR",
    ],
    "product_question": [
        "does the {item} come in other colours",
        "is the {item} compatible with my phone",
        "what size should I get for the {item}",
        "how long is the warranty on the {item}",
        "is the {item} waterproof",
        "what are the dimensions of the {item}",
        "does the {item} include batteries",
        "can you tell me more about the {item} specs",
        "is the {item} in stock in {city}",
        "what material is the {item} made of",
        "will the {item} work in Europe",
        "is there a newer model of the {item}",
    ],
    "complaint_damaged": [
        "my {item} arrived broken",
        "the package was crushed and the {item} is damaged",
        "the {item} stopped working after one day",
        "I received a defective {item}",
        "the screen on the {item} was cracked when I opened it",
        "parts are missing from my {item}",
        "the box was wet and the {item} is ruined",
        "the {item} you sent me is faulty",
        "this {item} is scratched all over",
        "my order {order} came damaged",
        "the {item} is not working out of the box",
        "received the {item} in terrible condition",
    ],
    "subscription_upgrade": [
        "how do I upgrade to the premium plan",
        "I want to switch to the yearly subscription",
        "can I get more storage on my plan",
        "upgrade my membership please",
        "what does the pro plan include",
        "move me to the family subscription",
        "I'd like to change my plan to premium",
        "how much is it to upgrade my subscription",
        "can I upgrade now and pay {when}",
        "add more users to my subscription",
        "switch my account to the business tier",
        "is there a discount for upgrading to annual",
    ],
}

SLOTS = {
    "item": [
        "headphones",
        "blender",
        "phone case",
        "laptop stand",
        "coffee maker",
        "running shoes",
        "desk lamp",
        "backpack",
        "smart watch",
        "keyboard",
        "jacket",
        "vacuum cleaner",
        "tablet",
        "speaker",
    ],
    "order": ["#48213", "A-1093", "#77120", "order 55102", "#30918", "B-2277", "#91004", "C-4410"],
    "when": ["yesterday", "last week", "on Monday", "three days ago", "this morning", "two weeks ago", "last night"],
    "city": ["Boston", "Seoul", "Berlin", "Austin", "Toronto", "Madrid", "Lyon"],
    "pay": ["PayPal", "Apple Pay", "my Visa", "my debit card", "Google Pay"],
}
OPENERS = [
    "",
    "",
    "",
    "hi, ",
    "hello, ",
    "hey there. ",
    "good morning, ",
    "excuse me, ",
    "quick question: ",
    "urgent: ",
    "hi team, ",
    "sorry to bother you, ",
]
CLOSERS = [
    "",
    "",
    "",
    " thanks",
    " thank you!",
    " please help",
    " asap",
    " thx",
    " cheers",
    " any help appreciated",
    " I've been a customer for years",
    "?",
]
# Clauses borrowing other intents' vocabulary: context, not the request.
HELD_OUT = 3  # templates per intent used only in test.csv
DISTRACTORS = [
    "I paid with my card",
    "my account email is the usual one",
    "I ordered it {when}",
    "the order number is {order}",
    "I live in {city}",
    "I already contacted support once",
    "it was a gift for my sister",
    "I have a premium account",
    "the package tracking showed delivered",
    "I bought the {item} on sale",
]


def fill(template: str, rng: random.Random) -> str:
    return template.format(**{k: rng.choice(v) for k, v in SLOTS.items()})


def typo(text: str, rng: random.Random) -> str:
    """One keyboard-ish error: swap, drop or double a letter."""
    words = text.split(" ")
    idx = [i for i, w in enumerate(words) if len(w) > 3]
    if not idx:
        return text
    i = rng.choice(idx)
    w = list(words[i])
    j = rng.randrange(1, len(w) - 1)
    op = rng.random()
    if op < 0.4:
        w[j], w[j + 1] = w[j + 1], w[j]
    elif op < 0.7:
        del w[j]
    else:
        w.insert(j, w[j])
    words[i] = "".join(w)
    return " ".join(words)


def message(intent: str, rng: random.Random, held_out: bool = False) -> str:
    """One message; `held_out` draws from the templates training never sees (the last HELD_OUT)."""
    templates = INTENTS[intent][-HELD_OUT:] if held_out else INTENTS[intent][:-HELD_OUT]
    core = fill(rng.choice(templates), rng)
    if rng.random() < 0.35:
        extra = fill(rng.choice(DISTRACTORS), rng)
        core = f"{extra}, {core}" if rng.random() < 0.5 else f"{core}. {extra}"
    text = rng.choice(OPENERS) + core + rng.choice(CLOSERS)
    for _ in range(rng.choice([0, 0, 0, 1, 1, 2])):
        text = typo(text, rng)
    style = rng.random()
    if style < 0.15:
        text = text.lower().replace(",", "").replace(".", "")
    elif style < 0.22:
        text = text.upper()
    elif style < 0.6:
        text = text[0].upper() + text[1:]
    return text


def generate(rows: int, seed: int, held_out: bool = False, prefix: str = "msg") -> list[dict[str, str]]:
    rng = random.Random(seed)
    # Mildly imbalanced (realistic): weights 1.0 .. 2.0 across intents.
    names = sorted(INTENTS)
    weights = [1.0 + i / (len(names) - 1) for i in range(len(names))]
    out = []
    for i in range(rows):
        intent = rng.choices(names, weights)[0]
        out.append({"id": f"{prefix}-{i:05d}", "text": message(intent, rng, held_out), "label": intent})
    return out


def write_csv(path: Path, rows: list[dict[str, str]], fields: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("examples/data/generated"))
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--test-share", type=float, default=0.15)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    train = generate(args.rows, args.seed)
    # The test set is phrased with templates the training data never uses: it measures
    # generalisation to new wordings, not recall of memorised ones.
    test = generate(int(args.rows * args.test_share), args.seed + 1, held_out=True, prefix="test")
    write_csv(args.out / "train.csv", train, ["id", "text", "label"])
    write_csv(args.out / "test.csv", test, ["id", "text", "label"])
    write_csv(args.out / "test_unlabelled.csv", test, ["id", "text"])
    print(f"wrote {len(train)} train and {len(test)} test rows ({len(INTENTS)} intents) to {args.out}")
    return args.out


if __name__ == "__main__":
    main()
