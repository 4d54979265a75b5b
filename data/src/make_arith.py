"""python data/src/make_arith.py [--out data/arith_demo.jsonl]

Writes ``arith_demo.jsonl``: short arithmetic word problems with a worked solution and the numeric answer, for the
grpo/rloo stages' verifiable rewards (``genie_core.rewards.math``). Records are ``{"question", "solution",
"answer"}``; every solution ends with ``The answer is <n>.``. The output is deterministic (a fixed seed), so a rerun
writes a byte-identical file; the script prints its sha1 for ``dataset_info.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from collections.abc import Callable
from pathlib import Path

SEED = 20240612
ROWS = 320
NAMES = ["Tom", "Mia", "Ava", "Leo", "Sam", "Zoe", "Ben", "Lily", "Max", "Emma", "Noah", "Ivy"]
ITEMS = ["apples", "books", "stickers", "marbles", "pencils", "cards", "shells", "coins", "stamps", "cookies"]

Problem = tuple[str, str, int]  # question, worked step, answer


def _add(rng: random.Random) -> Problem:
    name, item, a, b = rng.choice(NAMES), rng.choice(ITEMS), rng.randint(2, 60), rng.randint(2, 40)
    return f"{name} has {a} {item} and gets {b} more. How many {item} does {name} have now?", f"{a} + {b}", a + b


def _subtract(rng: random.Random) -> Problem:
    name, item, b = rng.choice(NAMES), rng.choice(ITEMS), rng.randint(2, 40)
    a = b + rng.randint(1, 50)
    return f"{name} had {a} {item} and gave away {b}. How many {item} are left?", f"{a} - {b}", a - b


def _multiply(rng: random.Random) -> Problem:
    item, a, b = rng.choice(ITEMS), rng.randint(2, 12), rng.randint(2, 12)
    return f"There are {a} boxes with {b} {item} in each box. How many {item} are there in total?", f"{a} * {b}", a * b


def _divide(rng: random.Random) -> Problem:
    item, b, k = rng.choice(ITEMS), rng.randint(2, 9), rng.randint(2, 12)
    question = f"{b * k} {item} are shared equally among {b} friends. How many {item} does each friend get?"
    return question, f"{b * k} / {b}", k


def _two_steps(rng: random.Random) -> Problem:
    name, item, a, b = rng.choice(NAMES), rng.choice(ITEMS), rng.randint(5, 50), rng.randint(2, 30)
    c = rng.randint(1, a + b - 1)
    question = f"{name} has {a} {item}, buys {b} more and then gives {c} to a friend. How many {item} are left?"
    return question, f"{a} + {b} - {c}", a + b - c


KINDS: list[Callable[[random.Random], Problem]] = [_add, _subtract, _multiply, _divide, _two_steps]


def build(rows: int = ROWS, seed: int = SEED) -> list[dict]:
    """``rows`` distinct problems, the kinds taken in turn so each is a fifth of the set."""
    rng, seen, records = random.Random(seed), set(), []
    while len(records) < rows:
        question, step, answer = KINDS[len(records) % len(KINDS)](rng)
        if question in seen:
            continue
        seen.add(question)
        records.append(
            {"question": question, "solution": f"{step} = {answer}. The answer is {answer}.", "answer": answer}
        )
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "arith_demo.jsonl")
    out = parser.parse_args().out
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in build()).encode("utf-8")
    out.write_bytes(data)
    print(f"wrote {ROWS} problems to {out} (sha1 {hashlib.sha1(data).hexdigest()})")


if __name__ == "__main__":
    main()
