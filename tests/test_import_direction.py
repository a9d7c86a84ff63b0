"""Imports point one way: neurons <- vistream_neuro <- backends <- evals (DESIGN.md section 3)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["neurons", "vistream_neuro", "backends", "evals"]
FRAMEWORKS_ONLY_IN = {"lava": {"neurons", "backends"}, "spikingjelly": {"neurons", "backends"}}


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


def test_the_checker_sees_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from evals.run import main\nimport backends.registry\n")
    assert {"evals", "backends"} <= _imports(bad)
