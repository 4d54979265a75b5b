"""The demo datasets in data/ are exactly what data/src/generate.py builds from data/src/."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
DEMO_FILES = [
    "alpaca_demo_en.json",
    "alpaca_demo_zh.json",
    "comparison_demo_en.json",
    "comparison_demo_zh.json",
    "dataset_info.json",
    "kto_demo_en.json",
    "openai_demo.json",
    "self_cognition.json",
    "sharegpt_demo.json",
    "wiki_demo.txt",
]
HINT = "edit data/src/ and run `python data/src/generate.py` rather than editing files in data/ by hand"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo_data_generate", DATA / "src" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _first_difference(expected: bytes, actual: bytes) -> str:
    """Where two file contents first differ, as a line number and the two lines."""
    for number, (want, got) in enumerate(zip(expected.splitlines(), actual.splitlines()), start=1):
        if want != got:
            return f"line {number}: committed {want[:120]!r}, generated {got[:120]!r}"
    return f"one is a prefix of the other ({len(expected)} vs {len(actual)} bytes)"


def test_generator_reproduces_committed_demo_data(tmp_path: Path) -> None:
    assert _load_generator().main(["--out", str(tmp_path)]) == 0

    written = sorted(path.name for path in tmp_path.iterdir())
    assert written == DEMO_FILES, f"the generator wrote {written}, expected {DEMO_FILES}"
    for name in DEMO_FILES:
        committed = DATA / name
        assert committed.is_file(), f"data/{name} is missing; {HINT}"
        expected, actual = committed.read_bytes(), (tmp_path / name).read_bytes()
        if expected != actual:
            raise AssertionError(
                f"data/{name} differs from the generated file, {_first_difference(expected, actual)}; {HINT}"
            )
