"""Imports point one way: neurons <- vistream_neuro <- backends <- evals (docs/ARCHITECTURE.md, "Layers")."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["neurons", "vistream_neuro", "backends", "evals"]
FRAMEWORKS_ONLY_IN = {"lava": {"neurons", "backends"}, "spikingjelly": {"neurons", "backends"},
                     "sanafe": {"backends"}}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("layer", LAYERS)
def test_layer_imports_only_lower_layers(layer):
    forbidden = set(LAYERS[LAYERS.index(layer) + 1:])
    files = sorted((ROOT / layer).rglob("*.py"))
    assert files, f"no python files in {layer}/"
    bad = {str(f.relative_to(ROOT)): _imports(f) & forbidden for f in files}
    assert not {k: v for k, v in bad.items() if v}


def test_frameworks_are_imported_only_in_neurons_and_backends():
    for layer in LAYERS:
        for f in (ROOT / layer).rglob("*.py"):
            for framework, allowed in FRAMEWORKS_ONLY_IN.items():
                if framework in _imports(f):
                    assert layer in allowed, f"{f.relative_to(ROOT)} imports {framework}"


def test_lava_is_imported_only_through_the_compat_module():
    """Every lava import sits in neurons/lava_compat.py or in a module that calls it first."""
    for layer in LAYERS:
        for f in (ROOT / layer).rglob("*.py"):
            if "lava" in _imports(f):
                assert "import_lava" in f.read_text(), f.relative_to(ROOT)


# inside evals: cli and data import no other part; harness builds on data; tasks and reports on both
EVALS_ALLOWED = {"cli": {"cli"}, "data": {"data"}, "harness": {"data", "harness"},
                 "tasks": {"data", "harness", "tasks"}, "reports": {"data", "harness", "reports"}}


def _modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", sorted(EVALS_ALLOWED))
def test_evals_packages_import_in_one_direction(package):
    files = sorted((ROOT / "evals" / package).rglob("*.py"))
    assert files, f"no python files in evals/{package}/"
    bad = {}
    for f in files:
        used = {m.split(".")[1] for m in _modules(f) if m.startswith("evals.") and m.count(".") >= 1}
        if used - EVALS_ALLOWED[package]:
            bad[str(f.relative_to(ROOT))] = used - EVALS_ALLOWED[package]
    assert not bad


def test_no_module_imports_private_names_of_another():
    offenders = []
    for layer in LAYERS:
        for f in (ROOT / layer).rglob("*.py"):
            tree = ast.parse(f.read_text(), str(f))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in LAYERS:
                    offenders += [f"{f.relative_to(ROOT)}: {node.module}.{a.name}" for a in node.names
                                  if a.name.startswith("_")]
    assert not offenders


def test_the_library_finds_backends_by_entry_point_without_importing_them():
    """vistream_neuro names no backend module; the backends register themselves in pyproject.toml."""
    named = re.compile(r"(?<![\w.])backends\.\w")  # backends.x, but not torch.backends.x
    for f in (ROOT / "vistream_neuro").rglob("*.py"):
        assert not named.search(f.read_text()), f.relative_to(ROOT)
    text = (ROOT / "pyproject.toml").read_text()
    assert '[project.entry-points."vistream_neuro.backends"]' in text


def test_the_checker_sees_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from evals.run import main\nimport backends.registry\n")
    assert {"evals", "backends"} <= _imports(bad)
