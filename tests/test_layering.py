"""Imports go one way: flows -> tasks -> genie_core; genie_core never imports Prefect; inside genie_core a layer
imports only layers below it, and packages of one layer never import each other in a circle (the layout table in
the README)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# genie_core's units (a subpackage or a top-level module) by layer, highest first
LAYERS: list[tuple[str, set[str]]] = [
    ("entry", {"cli", "stage_parent", "stage_child", "eval_command", "pipeline", "api", "webui"}),
    ("work", {"stages", "eval", "chat", "export", "rewards"}),
    ("build", {"data", "model", "template"}),
    ("config", {"hparams", "tracking", "tracking_model", "schema"}),
    ("base", {"extras", "__init__"}),
]
RANK = {unit: len(LAYERS) - i for i, (_, units) in enumerate(LAYERS) for unit in units}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            if node.module == "genie_core":  # `from genie_core import x`: x may be a module
                names.update(f"genie_core.{alias.name}" for alias in node.names)
    return names


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _unit(module: str) -> str | None:
    """The genie_core unit a dotted name belongs to; the package's own attributes (``__version__``) are its base."""
    parts = module.split(".")
    if parts[0] != "genie_core":
        return None
    if len(parts) == 1 or parts[1] not in RANK:
        return "__init__"
    return parts[1]


def _path_unit(path: Path) -> str:
    rel = path.relative_to(ROOT / "genie_core").with_suffix("")
    return rel.parts[0]


def unit_imports() -> dict[tuple[str, str], list[str]]:
    """(importer unit, imported unit) -> the files where it happens, for every cross-unit import in genie_core."""
    edges: dict[tuple[str, str], list[str]] = {}
    for path in _modules("genie_core"):
        src = _path_unit(path)
        for name in _imports(path):
            dst = _unit(name)
            if dst and dst != src:
                edges.setdefault((src, dst), []).append(str(path.relative_to(ROOT)))
    return edges


def layer_violations(edges: dict[tuple[str, str], list[str]]) -> list[str]:
    bad = [f"{s} -> {d} ({', '.join(sorted(set(f)))})" for (s, d), f in edges.items() if RANK[d] > RANK[s]]
    same = {(s, d) for (s, d) in edges if RANK[s] == RANK[d]}
    bad += [f"{s} <-> {d}: a circle inside one layer" for (s, d) in sorted(same) if (d, s) in same and s < d]
    return bad


def test_every_unit_has_a_layer():
    units = {_path_unit(p) for p in _modules("genie_core")}
    assert units <= set(RANK), f"add these to LAYERS: {sorted(units - set(RANK))}"


def test_genie_core_layers_import_downwards():
    assert layer_violations(unit_imports()) == []


def test_genie_core_imports_neither_prefect_nor_upper_layers():
    offenders = {}
    for path in _modules("genie_core"):
        top = {name.split(".")[0] for name in _imports(path)}
        bad = top & {"prefect", "tasks", "flows"}
        if path.name not in ("tracking.py", "tracking_model.py") and "mlflow" in top:
            bad.add("mlflow")
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert not offenders, offenders


def test_tasks_do_not_import_flows_and_hold_only_tasks():
    offenders = [
        str(p.relative_to(ROOT)) for p in _modules("tasks") if "flows" in {n.split(".")[0] for n in _imports(p)}
    ]
    assert not offenders, offenders
    for path in _modules("tasks"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        defs = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)]
        undecorated = [n.name for n in defs if not n.decorator_list and n.name not in ALLOWED_TASK_HELPERS]
        assert not undecorated, f"{path.name}: planning and helpers belong in genie_core.pipeline: {undecorated}"


# Prefect glue that is not a task: the cache key function, result storage, the parent run with Prefect's flow run
ALLOWED_TASK_HELPERS = {"step_cache_key", "results_storage", "pipeline_run", "run_step"}


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        ({("hparams", "data"): ["hparams/parser.py"]}, "hparams -> data"),
        ({("data", "template"): ["a"], ("template", "data"): ["b"]}, "data <-> template"),
        ({("stages", "eval"): ["a"], ("eval", "stages"): ["b"]}, "eval <-> stages"),
    ],
)
def test_checker_sees_wrong_way_and_circular_imports(edges, expected):
    assert any(expected in v for v in layer_violations(edges))


def test_checker_sees_a_wrong_way_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from prefect import flow\nimport flows.x\nfrom genie_core import stage_parent\n")
    assert {"prefect", "flows.x", "genie_core.stage_parent"} <= _imports(bad)


# Dependencies no module names in an import: the libraries we import load them (transformers' GGUF reader, its slow and
# fast tokenizer backends, bitsandbytes for quantization_bit)
LOADED_BY_OTHERS = {"gguf", "sentencepiece", "tokenizers", "bitsandbytes"}
IMPORT_NAMES = {"pyyaml": "yaml"}  # distribution -> module, where they differ beyond - and _


def test_every_dependency_is_imported():
    """A dependency nothing imports (omegaconf was one) only lengthens installs and widens what can break."""
    import re

    tomllib = pytest.importorskip("tomllib")
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    names = {re.split(r"[<>=!~;\[ ]", dep, maxsplit=1)[0].lower().replace("-", "_") for dep in declared}
    modules = {IMPORT_NAMES.get(name, name) for name in names}
    imported = {
        name.split(".")[0]
        for package in ("genie_core", "flows", "tasks")
        for path in _modules(package)
        for name in _imports(path)
    }
    assert modules - imported - LOADED_BY_OTHERS == set()
