"""Imports run one way: contract <- reporting <- model <- components and serving <- tfx_pipeline <- benchmarks.

A lower layer never imports a higher one, not even inside a function (README, Layout). The
check reads every module's syntax tree, so it sees function-level imports too.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Package -> the first-party packages it may import (itself included).
ALLOWED = {
    "contract": {"contract"},
    "reporting": {"contract", "reporting"},
    "model": {"contract", "reporting", "model"},
    "components": {"contract", "reporting", "model", "components"},
    "serving": {"contract", "reporting", "model", "serving"},
    "tfx_pipeline": {"contract", "reporting", "model", "components", "serving", "tfx_pipeline"},
    "benchmarks": {"contract", "reporting", "model", "components", "serving", "tfx_pipeline", "benchmarks"},
}


def imported_packages(path: pathlib.Path) -> set[tuple[str, int]]:
    """(first-party top-level package, line) for every import in the module, at any depth."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {(name.split(".")[0], node.lineno) for name in names if name.split(".")[0] in ALLOWED}
    return found


def layering_violations() -> list[str]:
    violations = []
    for package, allowed in ALLOWED.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            for imported, line in sorted(imported_packages(path)):
                if imported not in allowed:
                    violations.append(f"{path.relative_to(ROOT)}:{line} imports {imported} (above {package})")
    return violations


def test_no_layer_imports_a_higher_one():
    assert layering_violations() == []


def test_the_check_sees_an_import_inside_a_function(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from serving import client\n    import tfx_pipeline.config\n")
    assert imported_packages(module) == {("serving", 2), ("tfx_pipeline", 3)}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_every_layer_is_a_package_of_the_tree(package):
    assert (ROOT / package / "__init__.py").exists()
