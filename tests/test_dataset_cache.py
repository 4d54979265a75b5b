"""Tokenization per stage and the Arrow cache: masks, truncation, hits, misses, no half caches."""

from __future__ import annotations

import json

import pytest
from helpers import stage_config, write_registry

from genie_core.data import processors
from genie_core.data.processors import IGNORE_INDEX, Budget, encode_supervised
from genie_core.data.tokenized import get_dataset
from genie_core.extras.errors import DataError
from genie_core.hparams import get_args
from genie_core.model import load_tokenizer
from genie_core.schema import Example
from genie_core.template import get_template


@pytest.fixture()
def setup(tmp_path, tiny_model_dir, genie_home):
    data_dir = write_registry(tmp_path / "data")
    cfg = stage_config(tiny_model_dir, data_dir, tmp_path / "out")
    args = get_args(None, cfg)
    tokenizer = load_tokenizer(args.model)
    template = get_template("chatml", tokenizer)
    template.fix_tokenizer(tokenizer)
    return cfg, args, tokenizer, template


def _no_processing(*a, **k):
    raise AssertionError("tokenized again although a valid cache exists")


def test_labels_cover_only_the_reply(setup):
    _, args, tok, template = setup
    data = get_dataset(args, tok, template, "sft")
    row = data.train[0]
    reply = [t for t, lab in zip(row["input_ids"], row["labels"]) if lab != IGNORE_INDEX]
    text = tok.decode(reply)
    assert text.startswith("The answer is") and text.endswith("<|im_end|>\n") or text.endswith("<|im_end|>")
    assert "Add" not in text
    assert len(row["input_ids"]) == len(row["labels"])


def test_truncation_keeps_the_response(setup):
    _, _, tok, template = setup
    ex = Example(
        prompt=[{"role": "user", "content": "word " * 200}],
        response=[{"role": "assistant", "content": "The answer is 42."}],
    )
    ids, labels = encode_supervised(ex, tok, template, Budget(cutoff_len=48), train_on_prompt=False)
    assert len(ids) <= 48
    kept = tok.decode([t for t, lab in zip(ids, labels) if lab != IGNORE_INDEX])
    assert "The answer is 42." in kept
    assert tok.decode(ids).rstrip().endswith(kept.rstrip())


def test_second_run_hits_cache_without_tokenizing(setup, monkeypatch):
    _, args, tok, template = setup
    first = get_dataset(args, tok, template, "sft")
    assert not first.hit
    monkeypatch.setitem(processors.PROCESSORS, "sft", _no_processing)
    second = get_dataset(args, tok, template, "sft")
    assert second.hit and second.key == first.key
    assert second.train["input_ids"] == first.train["input_ids"]


@pytest.mark.parametrize("change", ["file", "cutoff_len", "template", "train_on_prompt"])
def test_any_input_change_misses(setup, change, tmp_path):
    cfg, args, tok, template = setup
    first = get_dataset(args, tok, template, "sft")
    if change == "file":
        path = tmp_path / "data" / "toy.json"
        rows = json.loads(path.read_text())
        rows[0]["output"] = "Changed answer."
        path.write_text(json.dumps(rows))
    elif change == "cutoff_len":
        args = get_args(None, {**cfg, "cutoff_len": 32})
    elif change == "train_on_prompt":
        args = get_args(None, {**cfg, "train_on_prompt": True})
    else:
        template = get_template("default", tok)
    second = get_dataset(args, tok, template, "sft")
    assert not second.hit and second.key != first.key


def test_bad_input_leaves_no_cache(tmp_path, tiny_model_dir, genie_home):
    data_dir = write_registry(tmp_path / "data", rows=[{"instruction": "hi", "output": "ok"}, {"output": "x"}])
    args = get_args(None, stage_config(tiny_model_dir, data_dir, tmp_path / "out"))
    tok = load_tokenizer(args.model)
    template = get_template("chatml", tok)
    with pytest.raises(DataError, match=r"toy\.json:1.*instruction"):
        get_dataset(args, tok, template, "sft")
    root = genie_home / "datasets"
    assert not root.exists() or not any(root.iterdir())


def test_pt_blocks_have_cutoff_length(tmp_path, tiny_model_dir, genie_home):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "text.txt").write_text("\n".join(f"Sentence number {i} about foxes and dogs." for i in range(200)))
    (data_dir / "dataset_info.json").write_text(
        json.dumps({"toy": {"file_name": "text.txt", "columns": {"prompt": "text"}}})
    )
    args = get_args(None, stage_config(tiny_model_dir, data_dir, tmp_path / "out", stage="pt", cutoff_len=32))
    tok = load_tokenizer(args.model)
    data = get_dataset(args, tok, get_template("default", tok), "pt")
    lengths = {len(x) for x in data.train["input_ids"]}
    assert lengths == {32} and len(data.train) > 10


def test_workers_build_the_same_cache_under_the_same_key(setup, tmp_path):
    """preprocessing_num_workers tokenizes in several processes into the rows one process makes, under one key."""
    cfg, args, tok, template = setup
    alone = get_dataset(args, tok, template, "sft")
    parallel_args = get_args(
        None, {**cfg, "preprocessing_num_workers": 3, "tokenized_cache_dir": str(tmp_path / "parallel")}
    )
    parallel = get_dataset(parallel_args, tok, template, "sft")
    assert not parallel.hit and parallel.key == alone.key
    assert parallel.train.features == alone.train.features
    assert parallel.train.to_dict() == alone.train.to_dict()


@pytest.mark.parametrize("stage", ["pt", "grpo", "rm"])
def test_workers_keep_cross_example_processing(setup, stage):
    """pt packs one stream across every text and grpo's extra columns come from all records: shards change neither."""
    from genie_core.data.tokenized import tokenize

    _, _, tok, template = setup
    examples = [
        Example(
            prompt=[{"role": "user", "content": f"Add {i} and {i + 1}. " * (i % 4 + 1)}],
            response=[
                {"role": "assistant", "content": f"The answer is {2 * i + 1}."},
                {"role": "assistant", "content": "No."},
            ],
            source=f"toy.json:{i}",
            extra={"columns": {"answer": str(2 * i + 1)}} if i >= 20 else {},  # only in the last shard
        )
        for i in range(24)
    ]
    process = processors.PROCESSORS[stage]
    alone = tokenize(process, examples, tok, template, Budget(cutoff_len=24), False)
    parallel = tokenize(process, examples, tok, template, Budget(cutoff_len=24), False, workers=3)
    assert len(alone) > 3 and parallel.features == alone.features
    assert parallel.to_dict() == alone.to_dict()
