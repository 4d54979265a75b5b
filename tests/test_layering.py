"""Imports go one way: flows -> tasks -> genie_core; genie_core never imports Prefect."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_genie_core_imports_neither_prefect_nor_upper_layers():
    offenders = {}
    for path in _modules("genie_core"):
        bad = _imports(path) & {"prefect", "tasks", "flows"}
        if path.name not in ("tracking.py", "tracking_model.py") and "mlflow" in _imports(path):
            bad.add("mlflow")
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert not offenders, offenders


def test_tasks_do_not_import_flows():
    offenders = [str(p.relative_to(ROOT)) for p in _modules("tasks") if "flows" in _imports(p)]
    assert not offenders, offenders


def test_checker_sees_a_wrong_way_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from prefect import flow\nimport flows.x\n")
    assert {"prefect", "flows"} <= _imports(bad)
