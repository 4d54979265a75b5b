"""`genie data check`: every bad record in one report, an exit status scripts can gate on, and --help."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flows import cli
from genie_core.data.assemble import load_examples
from genie_core.data.check import BAD_RECORD_LIMIT, check_report
from genie_core.extras.env import OFFLINE_DEFAULTS
from genie_core.extras.errors import DataError
from genie_core.hparams.data_args import DataArguments

GOOD = {"instruction": "Add 1 and 2.", "output": "3"}

# bad records at indices 1, 3 and 6; the blank line after index 2 makes line numbers differ from index + 1
THREE_BAD = [
    json.dumps(GOOD),
    json.dumps({"instruction": 3, "output": "x"}),
    json.dumps(GOOD),
    "",
    json.dumps({"instruction": "q", "output": ["a", "list"]}),
    json.dumps(GOOD),
    json.dumps(GOOD),
    json.dumps({"question": "no instruction column", "output": "y"}),
]
THREE_BAD_REPORTED = [
    "bad.jsonl:1 (line 2): field 'instruction': expected a string, got a number",
    "bad.jsonl:3 (line 5): field 'output': expected a string, got a list",
    "bad.jsonl:6 (line 8): field 'instruction': column 'instruction' (the prompt column of dataset 'bad'",
]


def registry(root: Path, files: dict[str, str | list]) -> Path:
    """One dataset per file, named after the file's stem, plus the dataset_info.json naming them."""
    root.mkdir(parents=True, exist_ok=True)
    info = {Path(name).stem: {"file_name": name} for name in files}
    (root / "dataset_info.json").write_text(json.dumps(info))
    for name, content in files.items():
        (root / name).write_text(content if isinstance(content, str) else json.dumps(content))
    return root


@pytest.fixture
def run_check(monkeypatch, capsys):
    """`genie` (flows.cli.main) in-process (a subprocess costs seconds of imports); env defaults undone after."""
    for key, value in OFFLINE_DEFAULTS.items():
        monkeypatch.setenv(key, os.environ.get(key, value))

    def run(*argv: str) -> tuple[int, str]:
        code = cli.main(["data", "check", *argv])
        return code, capsys.readouterr().out

    return run


def test_cli_reports_every_bad_record_and_exits_1(tmp_path):
    data_dir = registry(tmp_path, {"bad.jsonl": "\n".join(THREE_BAD) + "\n", "good.json": [GOOD]})
    proc = subprocess.run(
        [sys.executable, "-m", "flows.cli", "data", "check", "dataset=bad,good", f"dataset_dir={data_dir}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    for line in THREE_BAD_REPORTED:
        assert line in proc.stdout
    assert "records read: 7  kept: 4  dropped: 0  bad: 3" in proc.stdout
    assert "[train] good: alpaca" in proc.stdout  # the datasets after a bad one are still checked
    assert proc.stdout.rstrip().endswith("Result: 3 problem(s) found")


def test_training_still_stops_at_the_first_bad_record(tmp_path):
    data_dir = registry(tmp_path, {"bad.jsonl": "\n".join(THREE_BAD) + "\n"})
    with pytest.raises(DataError, match=r"^bad\.jsonl:1: field 'instruction': expected a string, got a number$"):
        load_examples(DataArguments(dataset="bad", dataset_dir=str(data_dir)), "sft")


def test_more_bad_records_than_the_limit(tmp_path, run_check):
    extra = 5
    rows = [{"instruction": i, "output": "x"} for i in range(BAD_RECORD_LIMIT + extra)]
    code, out = run_check("dataset=many", f"dataset_dir={registry(tmp_path, {'many.json': [GOOD, *rows]})}")
    assert code == 1
    listed = [line.strip() for line in out.splitlines() if line.startswith("    many.json:")]
    assert listed == [
        f"many.json:{i}: field 'instruction': expected a string, got a number" for i in range(1, BAD_RECORD_LIMIT + 1)
    ]
    assert f"    ... and {extra} more bad records" in out


def test_clean_dataset_exits_0(tmp_path, run_check):
    code, out = run_check("--dataset", "good", "--dataset_dir", str(registry(tmp_path, {"good.json": [GOOD] * 3})))
    assert code == 0
    assert "records read: 3  kept: 3  dropped: 0  bad: 0" in out and out.rstrip().endswith("Result: OK")


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_usage(flag, run_check):
    code, out = run_check(flag)
    assert code == 0
    assert out.startswith("usage: genie data check") and "Exit status" in out


def test_missing_file_and_unknown_name_are_problems_not_crashes(tmp_path, run_check):
    data_dir = registry(tmp_path, {"good.json": [GOOD]})
    info = json.loads((data_dir / "dataset_info.json").read_text())
    (data_dir / "dataset_info.json").write_text(json.dumps({**info, "gone": {"file_name": "gone.json"}}))
    code, out = run_check("dataset=gone,goood,good", f"dataset_dir={data_dir}")
    assert code == 1
    assert "dataset 'gone': file or folder not found" in out
    assert "dataset 'goood' is not defined" in out and "Did you mean 'good'" in out
    assert "[train] good: alpaca" in out and out.rstrip().endswith("Result: 2 problem(s) found")


def test_unknown_stage_is_a_usage_error(tmp_path, run_check):
    code, _ = run_check("dataset=good", "stage=sftt", f"dataset_dir={registry(tmp_path, {'good.json': [GOOD]})}")
    assert code == 2


def test_empty_held_out_split_is_a_problem(tmp_path):
    data_dir = registry(tmp_path, {"one.json": [GOOD]})
    report = check_report(DataArguments(dataset="one", dataset_dir=str(data_dir), eval_split=0.01), "sft")
    assert report.problems == 1 and "ERROR: eval_split holds out none of its prompts" in report.text


def test_unparsable_records_keep_their_index(tmp_path):
    text = "\n".join([json.dumps(GOOD), "{not json}", "[1, 2]", json.dumps({"instruction": 7})]) + "\n"
    csv_text = "instruction,output\nq,a\nq,a,extra\n"
    data_dir = registry(tmp_path, {"lines.jsonl": text, "table.csv": csv_text})
    report = check_report(DataArguments(dataset="lines,table", dataset_dir=str(data_dir)), "sft").text
    assert "    lines.jsonl:1: invalid JSON at line 2, column 2" in report
    assert "    lines.jsonl:2: line 3: each line must be a JSON object, got list" in report
    assert "    lines.jsonl:3 (line 4): field 'instruction': expected a string, got a number" in report
    assert "    table.csv:1: line 3: more values than header columns" in report
    # training keeps its first-error message, without the index the check adds
    with pytest.raises(DataError, match=r"^lines\.jsonl: invalid JSON at line 2, column 2"):
        load_examples(DataArguments(dataset="lines", dataset_dir=str(data_dir)), "sft")
