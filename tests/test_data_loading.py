"""Dataset registry, readers, converters and mixing, on tiny files written per test."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
from pathlib import Path

import pytest

from genie_core.data.assemble import interleave, load_examples, split_examples
from genie_core.data.check import check_datasets
from genie_core.data.converters import Dropped, convert_record
from genie_core.data.readers import read_records
from genie_core.data.registry import dataset_files, get_dataset_attrs, load_dataset_info, parse_entry
from genie_core.extras.errors import ConfigError, DataError
from genie_core.hparams.data_args import DataArguments
from genie_core.schema import Example

ALPACA = [
    {"instruction": "Add 1 and 2.", "input": "", "output": "3"},
    {"instruction": "Translate", "input": "good morning", "output": "Bonjour"},
    {"instruction": "Name a color.", "input": "", "output": "Blue"},
]

OPENAI_TAGS = {
    "role_tag": "role",
    "content_tag": "content",
    "user_tag": "user",
    "assistant_tag": "assistant",
    "system_tag": "system",
    "observation_tag": "tool",
}


def make(tmp_path: Path, info: dict, files: dict[str, object]) -> Path:
    """Write dataset_info.json and data files (str = raw text, list = JSON) under tmp_path."""
    (tmp_path / "dataset_info.json").write_text(json.dumps(info))
    for name, content in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else json.dumps(content, ensure_ascii=False))
    return tmp_path


def args(tmp_path: Path, dataset: str, **kw) -> DataArguments:
    return DataArguments(dataset=dataset, dataset_dir=str(tmp_path), **kw)


def load(tmp_path: Path, dataset: str, stage: str = "sft", **kw) -> tuple[list[Example], list[Dropped]]:
    return load_examples(args(tmp_path, dataset, **kw), stage)


def jsonl(rows: list[dict]) -> str:
    return "\n".join(json.dumps(r) for r in rows) + "\n"


# --- formats ------------------------------------------------------------------------------------------------


def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.mark.parametrize("suffix", ["json", "jsonl", "csv", "parquet", "arrow_file", "arrow_dir"])
def test_alpaca_formats_load_and_convert(tmp_path, suffix):
    if suffix == "json":
        make(tmp_path, {}, {"d.json": ALPACA})
        name = "d.json"
    elif suffix == "jsonl":
        make(tmp_path, {}, {"d.jsonl": jsonl(ALPACA)})
        name = "d.jsonl"
    elif suffix == "csv":
        _write_csv(tmp_path / "d.csv", ALPACA)
        name = "d.csv"
    elif suffix == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(ALPACA), tmp_path / "d.parquet")
        name = "d.parquet"
    else:
        from datasets import Dataset

        Dataset.from_list(ALPACA).save_to_disk(str(tmp_path / "saved"))
        if suffix == "arrow_dir":
            name = "saved"
        else:
            name = "d.arrow"
            arrow = next((tmp_path / "saved").glob("*.arrow"))
            (tmp_path / name).write_bytes(arrow.read_bytes())
    (tmp_path / "dataset_info.json").write_text(json.dumps({"demo": {"file_name": name}}))

    examples, dropped = load(tmp_path, "demo")
    assert dropped == []
    assert len(examples) == 3
    assert examples[0].prompt == [{"role": "user", "content": "Add 1 and 2."}]
    assert examples[0].response == [{"role": "assistant", "content": "3"}]
    assert examples[1].prompt[0]["content"] == "Translate\ngood morning"
    assert examples[1].source == f"{name}:1"
    assert dataset_files(get_dataset_attrs(["demo"], str(tmp_path))[0], str(tmp_path))


def test_txt_for_pretraining(tmp_path):
    make(
        tmp_path,
        {"corpus": {"file_name": "c.txt", "columns": {"prompt": "text"}}},
        {"c.txt": "first line of text\n\nsecond line\n"},
    )
    examples, dropped = load(tmp_path, "corpus", stage="pt")
    assert [ex.prompt[0]["content"] for ex in examples] == ["first line of text", "second line"]
    assert all(ex.response == [] for ex in examples) and dropped == []
    assert examples[1].source == "c.txt:1"


def test_history_becomes_earlier_turns(tmp_path):
    row = {
        "instruction": "And 2+2?",
        "input": "",
        "output": "4",
        "history": [["1+1?", "2"], ["3+3?", "6"]],
        "system": "be terse",
    }
    make(
        tmp_path,
        {
            "h": {
                "file_name": "h.json",
                "columns": {
                    "prompt": "instruction",
                    "query": "input",
                    "response": "output",
                    "history": "history",
                    "system": "system",
                },
            }
        },
        {"h.json": [row]},
    )
    (ex,), _ = load(tmp_path, "h")
    assert [m["role"] for m in ex.prompt] == ["user", "assistant", "user", "assistant", "user"]
    assert ex.prompt[0]["content"] == "1+1?" and ex.prompt[3]["content"] == "6"
    assert ex.response[0]["content"] == "4" and ex.system == "be terse"


def test_sharegpt_with_system_and_tool_call(tmp_path):
    tools = [{"name": "weather", "parameters": {"type": "object"}}]
    row = {
        "conversations": [
            {"from": "system", "value": "You can call tools."},
            {"from": "human", "value": "Weather in Paris?"},
            {"from": "function_call", "value": '{"name": "weather", "arguments": {"city": "Paris"}}'},
            {"from": "observation", "value": '{"temp": 20}'},
            {"from": "gpt", "value": "It is 20 degrees."},
        ],
        "tools": tools,
    }
    make(
        tmp_path,
        {
            "sg": {
                "file_name": "sg.json",
                "formatting": "sharegpt",
                "columns": {"messages": "conversations", "tools": "tools"},
            }
        },
        {"sg.json": [row]},
    )
    (ex,), _ = load(tmp_path, "sg")
    assert ex.system == "You can call tools."
    assert [m["role"] for m in ex.prompt] == ["user", "function", "observation"]
    assert ex.response == [{"role": "assistant", "content": "It is 20 degrees."}]
    assert json.loads(ex.tools) == tools


def test_openai_messages_via_tags(tmp_path):
    row = {
        "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "bye"},
            {"role": "assistant", "content": "goodbye"},
        ]
    }
    make(
        tmp_path,
        {
            "oa": {
                "file_name": "oa.jsonl",
                "formatting": "sharegpt",
                "columns": {"messages": "messages"},
                "tags": OPENAI_TAGS,
            }
        },
        {"oa.jsonl": jsonl([row])},
    )
    (ex,), _ = load(tmp_path, "oa")
    assert ex.system == "sys" and len(ex.prompt) == 3 and ex.response[0]["content"] == "goodbye"


def test_ranking_alpaca_and_sharegpt(tmp_path):
    alpaca = [
        {"instruction": "Q1", "input": "", "chosen": "good", "rejected": "bad"},
        {"instruction": "Q2", "input": "", "chosen": "same", "rejected": "same"},
    ]
    pairs = [{"instruction": "Q3", "output": ["yes", "no"]}]
    sharegpt = [
        {
            "conversations": [{"from": "human", "value": "Q4"}],
            "chosen": {"from": "gpt", "value": "good"},
            "rejected": {"from": "gpt", "value": "bad"},
        }
    ]
    make(
        tmp_path,
        {
            "ra": {
                "file_name": "ra.json",
                "ranking": True,
                "columns": {"prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected"},
            },
            "rp": {"file_name": "rp.json", "ranking": True},
            "rs": {
                "file_name": "rs.json",
                "ranking": True,
                "formatting": "sharegpt",
                "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"},
            },
        },
        {"ra.json": alpaca, "rp.json": pairs, "rs.json": sharegpt},
    )
    examples, dropped = load(tmp_path, "ra,rp,rs", stage="dpo")
    assert [[m["content"] for m in ex.response] for ex in examples] == [
        ["good", "bad"],
        ["yes", "no"],
        ["good", "bad"],
    ]
    assert [str(d) for d in dropped] == ["ra.json:1: chosen and rejected responses are identical"]


def test_self_cognition_placeholders(tmp_path):
    row = {"instruction": "Who are you?", "input": "", "output": "I am {{name}}, made by {{author}}."}
    make(tmp_path, {"id": {"file_name": "id.json"}}, {"id.json": [row]})
    (ex,), _ = load(tmp_path, "id", self_cognition_name="Genie", self_cognition_author="Lab")
    assert ex.response[0]["content"] == "I am Genie, made by Lab."


def test_folder_of_jsonl_files(tmp_path):
    make(
        tmp_path,
        {"many": {"file_name": "parts"}},
        {"parts/b.jsonl": jsonl(ALPACA[1:]), "parts/a.jsonl": jsonl(ALPACA[:1]), "parts/README.md": "notes"},
    )
    examples, _ = load(tmp_path, "many")
    assert [ex.source for ex in examples] == ["parts/a.jsonl:0", "parts/b.jsonl:0", "parts/b.jsonl:1"]
    files = dataset_files(get_dataset_attrs(["many"], str(tmp_path))[0], str(tmp_path))
    assert [f.name for f in files] == ["a.jsonl", "b.jsonl"]


# --- mixing, sampling, splitting ----------------------------------------------------------------------------


def _two_datasets(tmp_path: Path) -> Path:
    a = [{"instruction": f"a{i}", "output": "x"} for i in range(2)]
    b = [{"instruction": f"b{i}", "output": "x"} for i in range(4)]
    return make(tmp_path, {"a": {"file_name": "a.json"}, "b": {"file_name": "b.json"}}, {"a.json": a, "b.json": b})


def _names(examples: list[Example]) -> list[str]:
    return [ex.prompt[0]["content"] for ex in examples]


def test_mix_concat_and_interleave(tmp_path):
    _two_datasets(tmp_path)
    concat, _ = load(tmp_path, "a,b")
    assert _names(concat) == ["a0", "a1", "b0", "b1", "b2", "b3"]
    under, _ = load(tmp_path, "a,b", mix_strategy="interleave_under")
    assert _names(under) == ["a0", "b0", "a1", "b1"]
    over, _ = load(tmp_path, "a,b", mix_strategy="interleave_over")
    assert _names(over) == ["a0", "b0", "a1", "b1", "a0", "b2", "a1", "b3"]
    seeded = [
        _names(load(tmp_path, "a,b", mix_strategy="interleave_over", interleave_probs="0.8,0.2")[0]) for _ in range(2)
    ]
    assert seeded[0] == seeded[1] and {"b0", "b1", "b2", "b3"} <= set(seeded[0])
    with pytest.raises(ConfigError, match="interleave_probs"):
        load(tmp_path, "a,b", mix_strategy="interleave_under", interleave_probs="1.0")


def test_interleave_under_with_probs_stops_at_first_exhausted():
    out = interleave([[1, 2], [10, 20, 30, 40]], [0.5, 0.5], oversample=False, seed=0)
    assert out.count(1) + out.count(2) <= 2 and len(out) >= 2


def test_max_samples_per_dataset(tmp_path):
    _two_datasets(tmp_path)
    examples, _ = load(tmp_path, "a,b", max_samples=1)
    assert _names(examples) == ["a0", "b0"]


def test_val_split_is_deterministic(tmp_path):
    examples = [Example(prompt=[{"role": "user", "content": str(i)}], response=[]) for i in range(10)]
    train, val = split_examples(examples, 0.2, seed=1)
    assert len(train) == 8 and len(val) == 2
    assert split_examples(examples, 0.2, seed=1) == (train, val)
    train3, val3 = split_examples(examples, 3, seed=1)
    assert len(val3) == 3 and {e.prompt[0]["content"] for e in train3 + val3} == {str(i) for i in range(10)}
    with pytest.raises(ConfigError, match="val_size"):
        split_examples(examples, 10, seed=1)


# --- bad input ----------------------------------------------------------------------------------------------


def test_malformed_json_names_file_and_line(tmp_path):
    make(tmp_path, {"bad": {"file_name": "bad.json"}}, {"bad.json": '[\n  {"instruction": "a",}\n]'})
    with pytest.raises(DataError, match=r"bad\.json: invalid JSON at line 2, column"):
        load(tmp_path, "bad")


def test_malformed_dataset_info(tmp_path):
    (tmp_path / "dataset_info.json").write_text('{"a": {"file_name": "a.json"},\n}')
    with pytest.raises(DataError, match=r"dataset_info\.json: invalid JSON at line 2"):
        load_dataset_info(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        load_dataset_info(tmp_path / "nowhere")
    (tmp_path / "other").mkdir()
    with pytest.raises(DataError, match="dataset_info.json not found"):
        load_dataset_info(tmp_path / "other")


def test_bad_jsonl_line(tmp_path):
    make(tmp_path, {"bad": {"file_name": "bad.jsonl"}}, {"bad.jsonl": jsonl(ALPACA[:2]) + "{not json}\n"})
    with pytest.raises(DataError, match=r"bad\.jsonl: invalid JSON at line 3"):
        load(tmp_path, "bad")


def test_missing_column(tmp_path):
    rows = [ALPACA[0], {"question": "no instruction here", "output": "x"}]
    make(tmp_path, {"d": {"file_name": "d.json"}}, {"d.json": rows})
    with pytest.raises(DataError, match=r"d\.json:1: field 'instruction': column 'instruction'") as info:
        load(tmp_path, "d")
    assert (info.value.file, info.value.index, info.value.field) == ("d.json", 1, "instruction")


def test_wrong_types(tmp_path):
    make(
        tmp_path,
        {
            "d": {"file_name": "d.json"},
            "s": {"file_name": "s.json", "formatting": "sharegpt"},
            "r": {"file_name": "r.json", "formatting": "sharegpt"},
        },
        {
            "d.json": [ALPACA[0], {"instruction": ["a", "list"], "output": "x"}],
            "s.json": [{"conversations": "not a list"}],
            "r.json": [{"conversations": [{"from": "wizard", "value": "hi"}]}],
        },
    )
    with pytest.raises(DataError, match=r"d\.json:1: field 'instruction': expected a string, got a list"):
        load(tmp_path, "d")
    with pytest.raises(DataError, match=r"s\.json:0: field 'conversations': expected a list"):
        load(tmp_path, "s")
    with pytest.raises(DataError, match=r"r\.json:0: field 'conversations\[0\]': unknown role 'wizard'"):
        load(tmp_path, "r")


def test_dropped_records_are_reported(tmp_path):
    rows = [
        {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]},
        {"conversations": [{"from": "human", "value": "hi"}, {"from": "human", "value": "again"}]},
        {"conversations": [{"from": "human", "value": "only a question"}]},
        {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "  "}]},
    ]
    make(
        tmp_path,
        {"sg": {"file_name": "sg.json", "formatting": "sharegpt"}, "al": {"file_name": "al.json"}},
        {"sg.json": rows, "al.json": [ALPACA[0], {"instruction": "q", "input": "", "output": ""}]},
    )
    examples, dropped = load(tmp_path, "sg,al")
    assert len(examples) == 2
    assert [str(d) for d in dropped] == [
        "sg.json:1: roles do not alternate: turn 1 is user, expected assistant or function",
        "sg.json:2: conversation does not end with an assistant turn",
        "sg.json:3: empty assistant turn at position 1",
        "al.json:1: empty response",
    ]
    report = check_datasets(args(tmp_path, "sg,al"), "sft")
    assert "records read: 4  kept: 1  dropped: 3" in report
    assert "sg.json:2: conversation does not end with an assistant turn" in report


def test_empty_dataset_names_the_file(tmp_path):
    make(
        tmp_path,
        {"e": {"file_name": "empty.jsonl"}, "z": {"file_name": "z.json"}},
        {"empty.jsonl": "\n", "z.json": [{"instruction": "q", "output": ""}]},
    )
    with pytest.raises(DataError, match=r"empty\.jsonl: dataset 'e' has no records"):
        load(tmp_path, "e")
    with pytest.raises(DataError, match=r"z\.json: .*all 1 records were dropped \(1x empty response\)"):
        load(tmp_path, "z")
    assert "ERROR" in check_datasets(args(tmp_path, "z"), "sft")


def test_unknown_dataset_suggests_close_name(tmp_path):
    make(tmp_path, {"alpaca_en_demo": {"file_name": "a.json"}}, {"a.json": ALPACA})
    with pytest.raises(ConfigError, match="Did you mean 'alpaca_en_demo'"):
        load(tmp_path, "alpaca_en_dem")


def test_stage_and_data_kind_must_match(tmp_path):
    make(
        tmp_path,
        {"pairs": {"file_name": "p.json", "ranking": True}, "plain": {"file_name": "a.json"}},
        {"p.json": [{"instruction": "q", "chosen": "a", "rejected": "b"}], "a.json": ALPACA},
    )
    with pytest.raises(ConfigError, match="dataset 'pairs' is a ranking .*stage 'sft'"):
        load(tmp_path, "pairs", stage="sft")
    with pytest.raises(ConfigError, match="stage 'dpo' .*dataset 'plain' is not a ranking dataset"):
        load(tmp_path, "plain", stage="dpo")


def test_sha1_mismatch_warns(tmp_path, caplog):
    make(tmp_path, {"d": {"file_name": "d.json", "file_sha1": "0" * 40}}, {"d.json": ALPACA})
    logger = logging.getLogger("genie.data.readers")
    logger.addHandler(caplog.handler)
    try:
        load(tmp_path, "d")
    finally:
        logger.removeHandler(caplog.handler)
    assert "d.json" in caplog.text and "SHA-1" in caplog.text
    good = hashlib.sha1((tmp_path / "d.json").read_bytes()).hexdigest()
    attr = get_dataset_attrs(["d"], str(tmp_path))[0]
    attr.file_sha1 = good
    assert len(read_records(attr, tmp_path)) == 3


def test_hub_dataset_offline_is_a_clear_config_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    make(tmp_path, {"hub": {"hf_hub_url": "someone/not-cached-dataset"}}, {})
    with pytest.raises(ConfigError, match="file_name"):
        load(tmp_path, "hub")


def test_convert_record_directly():
    attr = parse_entry("x", {"file_name": "x.json"})
    result = convert_record({"instruction": "", "output": "y"}, attr, "x.json", 7, None)
    assert result == Dropped("x.json:7", "empty prompt")


def test_json_file_holding_json_lines(tmp_path):
    make(tmp_path, {"d": {"file_name": "d.json"}}, {"d.json": jsonl(ALPACA)})
    assert len(load(tmp_path, "d")[0]) == 3


class _WordTemplate:
    """Counts words: enough to check the report's arithmetic without a real chat template."""

    def encode_oneturn(self, tokenizer, messages, system=None, tools=None):
        prompt = " ".join(m["content"] for m in messages[:-1])
        return tokenizer(prompt)["input_ids"], tokenizer(messages[-1]["content"])["input_ids"]


def _word_tokenizer(text, add_special_tokens=True):
    return {"input_ids": text.split()}


def test_check_reports_token_lengths(tmp_path):
    rows = [{"instruction": "one two", "output": "three"}, {"instruction": "a b c d", "output": "e f"}]
    make(tmp_path, {"d": {"file_name": "d.json"}}, {"d.json": rows})
    report = check_datasets(args(tmp_path, "d", cutoff_len=4), "sft", _word_tokenizer, _WordTemplate())
    assert "min 3  mean 4.5  p50 3  p95 6  max 6" in report
    assert "longer than cutoff_len (4): 1" in report and report.endswith("Result: OK")
