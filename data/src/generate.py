"""python data/src/generate.py [--out DIR] [--check]

Builds the demo datasets in ``data/`` from the text and records in ``data/src/``, so that the prose lives in data
files and this script only samples tasks and conversations from it. The output is deterministic (fixed seeds):
a rerun writes byte-identical files and the same ``file_sha1`` values in ``dataset_info.json``. ``--check`` compares
DIR with a fresh build instead of writing to it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parent
SEED = 20240611
N_HISTORY = 20  # alpaca records whose earlier turns go into "history"
N_PLAIN_CONVERSATIONS = 112
N_OPENAI = 50

Task = dict[str, str]  # instruction, input, output, and "bad": a wrong answer for the ranking sets
Turns = list[tuple[str, str]]  # (question, answer) pairs


@cache
def src(name: str) -> Any:
    """A source file (cached and shared, so never modified): ``.json`` parsed, ``.jsonl`` records, ``.txt`` lines."""
    text = (SRC / name).read_text(encoding="utf-8")
    if name.endswith(".json"):
        return json.loads(text)
    lines = [line for line in text.splitlines() if line.strip()]
    return [json.loads(line) for line in lines] if name.endswith(".jsonl") else lines


@dataclass(frozen=True)
class Lang:
    """One language: ``lang[key]`` reads ``phrases_<code>.json``; ``lang.table(name)`` reads ``<name>_<code>.*``."""

    code: str

    @property
    def zh(self) -> bool:
        return self.code == "zh"

    def __getitem__(self, key: str) -> Any:
        return src(f"phrases_{self.code}.json")[key]

    def table(self, name: str, ext: str = "jsonl") -> list:
        return src(f"{name}_{self.code}.{ext}")


EN, ZH = Lang("en"), Lang("zh")


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _han_count(text: str) -> int:
    return sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff")


# --- wiki_demo.txt --------------------------------------------------------------------------------------------------


def _template_fields(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` plus, for each text field, ``Key`` (first letter upper-cased) and ``key_lower`` variants."""
    fields = dict(row)
    for key, value in row.items():
        if isinstance(value, str):
            fields[key.capitalize()] = _cap(value)
            fields[f"{key}_lower"] = value.lower()
    return fields


def build_wiki(rng: random.Random) -> list[str]:
    """Encyclopedic paragraphs: table rows put into rotating templates, plus hand-written articles; shuffled."""
    wiki = src("wiki.json")
    paras = []
    for table, templates in wiki["templates"].items():
        for i, row in enumerate(src(f"wiki_{table}.jsonl")):
            paras.append(templates[i % len(templates)].format(**_template_fields(row)))
    for topic in wiki["articles"]:
        paras.extend(src(f"wiki_{topic}.txt"))
    rng.shuffle(paras)
    return paras


# --- tasks ----------------------------------------------------------------------------------------------------------


def _task(instruction: str, output: str, bad: str, inp: str = "") -> Task:
    return {"instruction": instruction, "input": inp, "output": output, "bad": bad}


def _ask(phrases: dict[str, str], with_input: bool, inp: str, output: str, bad: str, **fields: Any) -> Task:
    """The task either as a question (``ask``) or as an instruction plus input (``ask_input``)."""
    if with_input:
        return _task(phrases["ask_input"], output, bad, inp)
    return _task(phrases["ask"].format(**fields), output, bad)


def _equation(lang: Lang, expr: str, value: int) -> str:
    return lang["arithmetic"]["answer"].format(expr=expr, value=value)


def _expr(rng: random.Random, op: str) -> tuple[str, int]:
    if op == "+":
        a, b = rng.randint(10, 999), rng.randint(10, 999)
        return f"{a} + {b}", a + b
    if op == "-":
        a = rng.randint(50, 999)
        b = rng.randint(10, a - 1)
        return f"{a} - {b}", a - b
    a, b = rng.randint(2, 99), rng.randint(2, 19)
    return f"{a} × {b}", a * b


def _capitals(lang: Lang) -> list[dict[str, str]]:
    """Rows of country, capital and (sometimes) decoy: a big city often mistaken for the capital."""
    return [row[lang.code] for row in src("capitals.jsonl")]


def _numbers(rng: random.Random) -> list[int]:
    while True:
        values = rng.sample(range(1, 100), rng.randint(5, 8))
        if values != sorted(values) and values != sorted(values, reverse=True):
            return values


def _join(values: list[int]) -> str:
    return ", ".join(str(v) for v in values)


def arithmetic(rng: random.Random, n: int, lang: Lang) -> list[Task]:
    out = []
    for i in range(n):
        expr, value = _expr(rng, "+-×"[i % 3])
        answer = _equation(lang, expr, value)
        bad = _equation(lang, expr, value + rng.choice([-10, -3, -2, -1, 1, 2, 3, 10]))
        out.append(_ask(lang["arithmetic"], i % 2 == 1, expr, answer, bad, expr=expr))
    return out


def _unit_case(rng: random.Random, i: int, lang: Lang) -> dict[str, Any]:
    """Conversion number ``i``: ``from``, ``to``, ``value``, ``result`` and a ``wrong`` result."""
    table = lang["units"]["table"]
    k = i % (len(table) + 1)  # every (len(table) + 1)-th case is a temperature
    if k == len(table):
        c = rng.randrange(-20, 101, 5)
        return {**lang["units"]["temperature"], "value": c, "result": c * 9 // 5 + 32, "wrong": c + 32}
    unit = table[k]
    value = rng.randint(unit["min"], unit["max"])
    wrong_factor = unit["factor"] // 10 if unit["factor"] >= 100 else 100
    return {**unit, "value": value, "result": value * unit["factor"], "wrong": value * wrong_factor}


def units(rng: random.Random, n: int, lang: Lang) -> list[Task]:
    phrases, out = lang["units"], []
    for i in range(n):
        case = _unit_case(rng, i, lang)
        bad = phrases["answer"].format(**{**case, "result": case["wrong"]})
        out.append(_task(phrases["ask"].format(**case), phrases["answer"].format(**case), bad))
    return out


def reverse(rng: random.Random, n: int, lang: Lang) -> list[Task]:
    out = []
    for word in rng.sample(lang.table("reverse", "txt"), n):
        bad = word
        if not lang.zh:  # a scramble of the letters, unless that gives back the word or the answer
            scrambled = "".join(rng.sample(word, len(word)))
            bad = word if scrambled in (word, word[::-1]) else scrambled
        out.append(_task(lang["reverse"]["ask_input"], word[::-1], bad, word))
    return out


def capitals(rng: random.Random, n: int, lang: Lang) -> list[Task]:
    rows, phrases, out = _capitals(lang), lang["capitals"], []
    for i, row in enumerate(rng.sample(rows, n)):
        others = [r["capital"] for r in rows if r["capital"] != row["capital"]]
        decoy = row.get("decoy") or rng.choice(others)
        answer, bad = phrases["answer"].format(**row), phrases["answer"].format(**{**row, "capital": decoy})
        bare = row["country"].removeprefix("the ")  # "the United Kingdom" as an input is "United Kingdom"
        out.append(_ask(phrases, i % 3 == 2, bare, answer, bad, **row))
    return out


def antonyms(rng: random.Random, n: int, lang: Lang) -> list[Task]:
    pairs, out = lang.table("antonyms"), []
    for i, pair in enumerate(rng.sample(pairs, n)):
        bad = rng.choice([p["opposite"] for p in pairs if p["opposite"] != pair["opposite"]])
        out.append(_ask(lang["antonyms"], i % 2 == 0, pair["word"], pair["opposite"], bad, **pair))
    return out


def sorting(rng: random.Random, n: int, lang: Lang) -> list[Task]:
    out = []
    for i in range(n):
        values = _numbers(rng)
        descending = i % 4 == 3
        ask = lang["sorting"]["ask_descending" if descending else "ask_ascending"]
        out.append(_task(ask, _join(sorted(values, reverse=descending)), _join(values), _join(values)))
    return out


def sentiment(rng: random.Random, n: int, lang: Lang) -> list[Task]:
    phrases, out = lang["sentiment"], []
    good, poor = phrases["labels"]
    for row in rng.sample(lang.table("sentiment"), n):
        bad = poor if row["label"] == good else good
        out.append(_task(phrases["ask_input"], row["label"], bad, row["text"]))
    return out


def _rewrites(rng: random.Random, n: int, lang: Lang, name: str, given: str, wanted: str) -> list[Task]:
    """Rows of table ``name`` turned from ``given`` into ``wanted``; the wrong answer is the input or a refusal."""
    phrases, out = lang[name], []
    for i, row in enumerate(rng.sample(lang.table(name), n)):
        bad = row[given] if i % 2 == 0 else phrases["lazy"]
        out.append(_task(phrases["ask_input"], row[wanted], bad, row[given]))
    return out


def summaries(rng: random.Random, n: int, lang: Lang) -> list[Task]:
    return _rewrites(rng, n, lang, "summaries", "text", "summary")


def formal(rng: random.Random, n: int, lang: Lang) -> list[Task]:
    return _rewrites(rng, n, lang, "formal", "informal", "formal")


def counting(rng: random.Random, n: int, lang: Lang) -> list[Task]:
    """Count the words of an English sentence, or the Chinese characters of a Chinese one."""
    phrases, out = lang["counting"], []
    for sentence in rng.sample(lang.table("counting", "txt"), n):
        count = _han_count(sentence) if lang.zh else len(sentence.split())
        answer, bad = (phrases["answer"].format(count=c) for c in (count, count + rng.choice([-2, -1, 1, 2])))
        out.append(_task(phrases["ask_input"], answer, bad, sentence))
    return out


def parity(rng: random.Random, n: int, lang: Lang) -> list[Task]:
    phrases, out = lang["parity"], []
    for value in rng.sample(range(10, 1000), n):
        kind, other = phrases["kinds"] if value % 2 == 0 else phrases["kinds"][::-1]
        answer, bad = (phrases["answer"].format(value=value, kind=k) for k in (kind, other))
        out.append(_task(phrases["ask"].format(value=value), answer, bad))
    return out


TaskFn = Callable[[random.Random, int, Lang], list[Task]]
SFT_MIX: tuple[tuple[TaskFn, int], ...] = (
    (arithmetic, 40),
    (units, 30),
    (reverse, 25),
    (capitals, 30),
    (antonyms, 30),
    (sorting, 25),
    (summaries, 20),
    (sentiment, 30),
    (formal, 20),
    (counting, 15),
    (parity, 15),
)
RANKING_MIX: tuple[tuple[TaskFn, int], ...] = (
    (arithmetic, 40),
    (capitals, 30),
    (antonyms, 25),
    (units, 25),
    (sorting, 20),
    (sentiment, 20),
    (summaries, 10),
    (formal, 10),
)


# --- follow-up conversations ----------------------------------------------------------------------------------------


def _chain_sum(rng: random.Random, lang: Lang) -> Turns:
    a, b, c = rng.randint(10, 99), rng.randint(10, 99), rng.randint(2, 9)
    total, product = a + b, (a + b) * c
    turns = [
        (lang["arithmetic"]["ask"].format(expr=f"{a} + {b}"), _equation(lang, f"{a} + {b}", total)),
        (lang["chain"]["multiply"].format(n=c), _equation(lang, f"{total} × {c}", product)),
    ]
    if rng.random() < 0.5:
        d = rng.randint(1, 50)
        turns.append((lang["chain"]["subtract"].format(n=d), _equation(lang, f"{product} - {d}", product - d)))
    return turns


def _chain_capitals(rng: random.Random, lang: Lang) -> Turns:
    rows = rng.sample(_capitals(lang), rng.randint(2, 3))
    phrases = lang["capitals"]
    turns = [(phrases["ask"].format(**rows[0]), phrases["answer"].format(**rows[0]))]
    turns += [(lang["chain"]["what_about"].format(**row), phrases["answer"].format(**row)) for row in rows[1:]]
    return turns


def _chain_units(rng: random.Random, lang: Lang) -> Turns:
    unit = rng.choice(lang["units"]["table"])
    values = rng.sample(range(unit["min"], unit["max"] + 1), 2)
    first, second = ({**unit, "value": v, "result": v * unit["factor"]} for v in values)
    answer = lang["units"]["answer"]
    return [
        (lang["units"]["ask"].format(**first), answer.format(**first)),
        (lang["chain"]["units_again"].format(**second), answer.format(**second)),
    ]


def _chain_antonyms(rng: random.Random, lang: Lang) -> Turns:
    first, second = rng.sample(lang.table("antonyms"), 2)
    return [
        (lang["antonyms"]["ask"].format(**first), first["opposite"]),
        (lang["chain"]["opposite_again"].format(**second), second["opposite"]),
    ]


def _chain_two_sums(rng: random.Random, lang: Lang) -> Turns:
    (e1, r1), (e2, r2) = _expr(rng, "+"), _expr(rng, "-")
    ask = lang["arithmetic"]["ask"]
    return [
        (ask.format(expr=e1), _equation(lang, e1, r1)),
        (ask.format(expr=e2), _equation(lang, e2, r2)),
        (lang["chain"]["add_results"], _equation(lang, f"{r1} + {r2}", r1 + r2)),
    ]


CHAINS = (_chain_sum, _chain_capitals, _chain_units, _chain_antonyms, _chain_two_sums)


def chain(rng: random.Random, kind: int, lang: Lang) -> Turns:
    """A short follow-up conversation of the given kind (0-4)."""
    return CHAINS[kind](rng, lang)


# --- alpaca, ranking and self-cognition sets ------------------------------------------------------------------------


def _alpaca(instruction: str, inp: str, output: str, history: list[list[str]] | None = None) -> dict:
    return {"instruction": instruction, "input": inp, "output": output, "history": history or []}


def build_alpaca(rng: random.Random, lang: Lang) -> list[dict]:
    """Tasks plus multi-turn records whose earlier turns go into ``history``; shuffled."""
    records = [_alpaca(t["instruction"], t["input"], t["output"]) for fn, n in SFT_MIX for t in fn(rng, n, lang)]
    for i in range(N_HISTORY):
        turns = chain(rng, i % 5, lang)
        question, answer = turns[-1]
        records.append(_alpaca(question, "", answer, [list(turn) for turn in turns[:-1]]))
    rng.shuffle(records)
    return records


def _ranked(instruction: str, inp: str, chosen: str, rejected: str) -> dict:
    return {"instruction": instruction, "input": inp, "chosen": chosen, "rejected": rejected}


def build_ranking(rng: random.Random, lang: Lang) -> list[dict]:
    """chosen = the correct answer; rejected = a wrong answer, or (one in four) a rude brush-off. Plus advice."""
    records = []
    for fn, n in RANKING_MIX:
        for i, task in enumerate(fn(rng, n, lang)):
            rejected = rng.choice(lang["rude"]) if i % 4 == 3 else task["bad"]
            records.append(_ranked(task["instruction"], task["input"], task["output"], rejected))
    records += [_ranked(row["question"], "", row["chosen"], row["rejected"]) for row in lang.table("advice")]
    rng.shuffle(records)
    return records


def build_kto(ranked: list[dict], n: int = 60) -> list[dict]:
    """Single replies tagged desirable or not, from the first ``n`` pairs: even rows keep the chosen reply (true),
    odd rows the rejected one (false), so the held-out prompts of both sets line up."""
    rows = []
    for i, pair in enumerate(ranked[:n]):
        prompt = f"{pair['instruction']}\n{pair['input']}" if pair["input"] else pair["instruction"]
        reply, tag = (pair["chosen"], True) if i % 2 == 0 else (pair["rejected"], False)
        messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": reply}]
        rows.append({"messages": messages, "label": tag})
    return rows


def build_self_cognition() -> list[dict]:
    rows = EN.table("self_cognition") + ZH.table("self_cognition")
    return [{"instruction": row["question"], "input": "", "output": row["answer"]} for row in rows]


# --- tool calling ---------------------------------------------------------------------------------------------------


def _tool_data(key: str) -> Any:
    """A table of ``tools.json``: ``schemas``, ``weather_cities``, ``conditions``, ``time_zones`` or ``rates``."""
    return src("tools.json")[key]


def _turn(role: str, value: str) -> dict[str, str]:
    return {"from": role, "value": value}


def _call(name: str, arguments: dict) -> dict[str, str]:
    return _turn("function_call", json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False))


def _obs(result: dict) -> dict[str, str]:
    return _turn("observation", json.dumps(result, ensure_ascii=False))


def _tools(*names: str) -> str:
    return json.dumps([_tool_data("schemas")[name] for name in names], ensure_ascii=False)


def _weather(rng: random.Random, city: str, typical: int, fahrenheit: bool = False) -> dict:
    celsius = typical + rng.randint(-8, 8)
    condition = rng.choice([c for c in sorted(_tool_data("conditions")) if c != "snow" or celsius <= 1])
    return {
        "city": city,
        "temperature": round(celsius * 9 / 5 + 32) if fahrenheit else celsius,
        "unit": "fahrenheit" if fahrenheit else "celsius",
        "condition": condition,
        "humidity": rng.randint(30, 95),
    }


def _deg(obs: dict) -> str:
    return f"{obs['temperature']} °{'F' if obs['unit'] == 'fahrenheit' else 'C'}"


def _sky(obs: dict, lang: Lang) -> str:
    return _tool_data("conditions")[obs["condition"]][lang.code]


def tool_weather(rng: random.Random, lang: Lang) -> dict:
    row = rng.choice(_tool_data("weather_cities"))
    city, phrases = row[lang.code], lang["tools"]
    fahrenheit = False if lang.zh else rng.random() < 0.3
    obs = _weather(rng, city, row["typical_celsius"], fahrenheit)
    args = {"city": city, "unit": "fahrenheit"} if fahrenheit else {"city": city}
    ask = phrases["weather_ask_fahrenheit" if fahrenheit else "weather_ask"].format(city=city)
    answer = phrases["weather_answer"].format(
        city=city, degrees=_deg(obs), sky=_sky(obs, lang), humidity=obs["humidity"]
    )
    conv = [_turn("human", ask), _call("get_weather", args), _obs(obs), _turn("gpt", answer)]
    return {
        "conversations": conv,
        "tools": _tools("get_weather") if lang.zh else _tools("get_weather", "get_local_time"),
    }


def tool_weather_followup(rng: random.Random) -> dict:
    row = rng.choice(_tool_data("weather_cities"))
    city, phrases = row["en"], EN["tools"]
    obs = _weather(rng, city, row["typical_celsius"])
    sky = _sky(obs, EN)
    rainy = _tool_data("conditions")[obs["condition"]]["rainy"]
    conv = [
        _turn("human", phrases["outing_ask"].format(city=city)),
        _call("get_weather", {"city": city}),
        _obs(obs),
        _turn("gpt", phrases["outing_answer"].format(degrees=_deg(obs), city=city, sky=sky)),
        _turn("human", phrases["umbrella_ask"]),
        _turn("gpt", phrases["umbrella_yes" if rainy else "umbrella_no"].format(city=city, sky=sky)),
    ]
    return {"conversations": conv, "tools": _tools("get_weather")}


def tool_weather_compare(rng: random.Random) -> dict:
    row_a, row_b = rng.sample(_tool_data("weather_cities"), 2)
    obs_a = _weather(rng, row_a["en"], row_a["typical_celsius"])
    obs_b = _weather(rng, row_b["en"], row_b["typical_celsius"])
    while obs_b["temperature"] == obs_a["temperature"]:
        obs_b = _weather(rng, row_b["en"], row_b["typical_celsius"])
    warm, cold = (obs_a, obs_b) if obs_a["temperature"] > obs_b["temperature"] else (obs_b, obs_a)
    phrases = EN["tools"]
    answer = phrases["compare_answer"].format(
        warm=warm["city"], warm_degrees=_deg(warm), cold=cold["city"], cold_degrees=_deg(cold)
    )
    conv = [
        _turn("human", phrases["compare_ask"].format(a=row_a["en"], b=row_b["en"])),
        _call("get_weather", {"city": row_a["en"]}),
        _obs(obs_a),
        _call("get_weather", {"city": row_b["en"]}),
        _obs(obs_b),
        _turn("gpt", answer),
    ]
    return {"conversations": conv, "tools": _tools("get_weather")}


def _calc_expr(rng: random.Random) -> tuple[str, str, int]:
    """(expression for the tool, expression for people, exact integer result)."""
    a, b, c = rng.randint(12, 99), rng.randint(3, 40), rng.randint(2, 12)
    form = rng.randrange(4)
    if form == 0:
        return f"{a} * {b}", f"{a} × {b}", a * b
    if form == 1:
        return f"({a} + {b}) * {c}", f"({a} + {b}) × {c}", (a + b) * c
    if form == 2:
        return f"{a * b} / {b}", f"{a * b} ÷ {b}", a
    return f"{a} * {c} - {b}", f"{a} × {c} - {b}", a * c - b


def tool_calculator(rng: random.Random, lang: Lang) -> dict:
    expr, pretty, result = _calc_expr(rng)
    conv = [
        _turn("human", lang["tools"]["calculator_ask"].format(expr=pretty)),
        _call("calculator", {"expression": expr}),
        _obs({"result": result}),
        _turn("gpt", _equation(lang, pretty, result)),
    ]
    return {"conversations": conv, "tools": _tools("calculator", "convert_currency")}


def tool_currency(rng: random.Random, lang: Lang) -> dict:
    rate = rng.choice(_tool_data("rates"))
    amount = rng.choice([20, 50, 75, 100, 120, 250, 500, 1000])
    converted = round(amount * rate["rate"], 2)
    args = {"amount": amount, "from_currency": rate["from"], "to_currency": rate["to"]}
    names = dict(zip(("from", "to"), rate["zh"] if lang.zh else (rate["from"], rate["to"])))
    ask = lang["tools"]["currency_ask"].format(amount=amount, **names)
    answer = lang["tools"]["currency_answer"].format(rate=rate["rate"], amount=amount, converted=converted, **names)
    obs = {**args, "rate": rate["rate"], "converted": converted}
    conv = [_turn("human", ask), _call("convert_currency", args), _obs(obs), _turn("gpt", answer)]
    return {"conversations": conv, "tools": _tools("convert_currency", "calculator")}


def tool_time(rng: random.Random) -> dict:
    row = rng.choice(_tool_data("time_zones"))
    city, zone = row["city"], row["zone"]
    local = f"{rng.randint(0, 23):02d}:{rng.randrange(0, 60, 5):02d}"
    conv = [
        _turn("human", EN["tools"]["time_ask"].format(city=city)),
        _call("get_local_time", {"city": city}),
        _obs({"city": city, "timezone": zone, "local_time": local}),
        _turn("gpt", EN["tools"]["time_answer"].format(time=local, city=city, zone=zone)),
    ]
    return {"conversations": conv, "tools": _tools("get_local_time", "get_weather")}


def tool_not_needed(rng: random.Random, i: int) -> dict:
    """Tools are offered, but the question does not need them."""
    if i % 2 == 0:
        row = rng.choice(_capitals(EN))
        ask, answer = EN["capitals"]["ask"].format(**row), EN["capitals"]["answer"].format(**row)
    else:
        ask, answer = EN["tools"]["greeting_ask"], EN["tools"]["greeting_answer"]
    return {
        "conversations": [_turn("human", ask), _turn("gpt", answer)],
        "tools": _tools("get_weather", "get_local_time"),
    }


def build_tool_conversations(rng: random.Random) -> list[dict]:
    convs = [tool_weather(rng, ZH if i % 4 == 3 else EN) for i in range(12)]
    convs += [tool_weather_followup(rng) for _ in range(4)]
    convs += [tool_weather_compare(rng) for _ in range(4)]
    convs += [tool_calculator(rng, ZH if i == 5 else EN) for i in range(6)]
    convs += [tool_currency(rng, ZH if i == 4 else EN) for i in range(5)]
    convs += [tool_time(rng) for _ in range(4)]
    convs += [tool_not_needed(rng, i) for i in range(3)]
    for conv in convs[::3]:
        turns = conv["conversations"]
        turns.insert(0, _turn("system", (ZH if _han_count(turns[0]["value"]) else EN)["tools"]["system"]))
    return convs


# --- plain conversations --------------------------------------------------------------------------------------------


def _pool(rng: random.Random, lang: Lang) -> Turns:
    tasks = [t for fn, n in SFT_MIX for t in fn(rng, max(1, n // 3), lang)]
    return [(f"{t['instruction']}\n{t['input']}" if t["input"] else t["instruction"], t["output"]) for t in tasks]


def _dialogues(rng: random.Random, n: int) -> list[tuple[str | None, Turns]]:
    """``n`` (system or None, turns) dialogues, a quarter of them in Chinese."""
    pools = {EN: _pool(rng, EN), ZH: _pool(rng, ZH)}
    out = []
    for i in range(n):
        lang = ZH if i % 4 == 3 else EN
        turns = chain(rng, (i // 2) % 5, lang) if i % 2 == 0 else rng.sample(pools[lang], rng.randint(1, 3))
        out.append((rng.choice(lang["systems"]) if i % 3 == 0 else None, turns))
    return out


def build_sharegpt(rng: random.Random) -> list[dict]:
    records = []
    for system, turns in _dialogues(rng, N_PLAIN_CONVERSATIONS):
        conv = [_turn("system", system)] if system else []
        for question, answer in turns:
            conv += [_turn("human", question), _turn("gpt", answer)]
        records.append({"conversations": conv, "tools": ""})
    records += build_tool_conversations(rng)
    rng.shuffle(records)
    return records


def build_openai(rng: random.Random) -> list[dict]:
    records = []
    for system, turns in _dialogues(rng, N_OPENAI):
        messages = [{"role": "system", "content": system}] if system else []
        for question, answer in turns:
            messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        records.append({"messages": messages})
    return records


# --- files ----------------------------------------------------------------------------------------------------------


def _json_bytes(obj: object) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def build_dataset_info(files: dict[str, bytes]) -> dict[str, dict]:
    """``datasets.json`` with the ``file_sha1`` of each built file inserted after its ``file_name``.

    Entries for files that are not built here (hub datasets, hand-made files) are copied as they are.
    """
    info = {}
    for name, entry in src("datasets.json").items():
        data = files.get(entry.get("file_name", ""))
        if data is not None:
            entry = {"file_name": entry["file_name"], "file_sha1": hashlib.sha1(data).hexdigest(), **entry}
        info[name] = entry
    return info


def build_all() -> dict[str, bytes]:
    """Every demo file's name and content, ``dataset_info.json`` included."""
    files = {
        "wiki_demo.txt": ("\n".join(build_wiki(random.Random(SEED))) + "\n").encode("utf-8"),
        "alpaca_demo_en.json": _json_bytes(build_alpaca(random.Random(SEED + 1), EN)),
        "alpaca_demo_zh.json": _json_bytes(build_alpaca(random.Random(SEED + 2), ZH)),
        "comparison_demo_en.json": _json_bytes(ranked_en := build_ranking(random.Random(SEED + 3), EN)),
        "kto_demo_en.json": _json_bytes(build_kto(ranked_en)),
        "comparison_demo_zh.json": _json_bytes(build_ranking(random.Random(SEED + 4), ZH)),
        "sharegpt_demo.json": _json_bytes(build_sharegpt(random.Random(SEED + 5))),
        "openai_demo.json": _json_bytes(build_openai(random.Random(SEED + 6))),
        "self_cognition.json": _json_bytes(build_self_cognition()),
    }
    files["dataset_info.json"] = _json_bytes(build_dataset_info(files))
    return files


def write_all(out_dir: Path) -> list[str]:
    """Write every demo file into ``out_dir``; returns the file names."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = build_all()
    for name, data in files.items():
        (out_dir / name).write_bytes(data)
    return sorted(files)


def stale_files(out_dir: Path) -> list[str]:
    """Names of the demo files in ``out_dir`` that are missing or differ from a fresh build."""
    return [name for name, data in sorted(build_all().items()) if not _same(out_dir / name, data)]


def _same(path: Path, data: bytes) -> bool:
    return path.is_file() and path.read_bytes() == data


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the demo datasets from data/src/.")
    parser.add_argument("--out", type=Path, default=SRC.parent, help="output folder (default: data/)")
    parser.add_argument("--check", action="store_true", help="compare --out with a fresh build; write nothing")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(args.out)
        print(f"{args.out}: " + (f"differs from data/src in {', '.join(stale)}" if stale else "up to date"))
        return 1 if stale else 0
    names = write_all(args.out)
    print(f"wrote {len(names)} files to {args.out}: {', '.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
