"""The import direction the README's layout section draws, checked over the import graph.

Each area may import only areas on a lower level (never a sibling, never upwards), so the
bottom knows nothing of the top: the catalog and Caffe-file I/O (core) first, then the nets
and the data layers, then surgery and the dataset tools, then evaluation (scoring,
inference), training (the loop, schedules, snapshots), the paper's analyses of finished
runs, then the model zoo, then the comparison and export tools, with the demo, the
benchmarks and the paper's tables on top. Tests may import anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LEVELS = {
    "core": 0,
    "nets": 1, "layers": 1,
    "surgery": 2, "data": 2,
    "evaluation": 3,
    "training": 4,
    "analyses": 5,
    "zoo": 6,
    "compare": 7, "export": 7,
    "demo": 8, "bench": 8, "paper": 8,
}
# Caffe imports the data layers by top-level module name (layers/ is on the venv's path).
LAYER_MODULES = {p.stem for p in (REPO / "layers").glob("*.py")}


def area_of(module: str) -> str | None:
    top = module.split(".")[0]
    if top in LAYER_MODULES:
        return "layers"
    return top if top in LEVELS else None


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in a file, wherever it sits (in functions too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def project_files():
    for area in LEVELS:
        yield from sorted((REPO / area).rglob("*.py"))


def test_every_project_package_has_a_level():
    """A new top-level package must be placed in the order before it is imported."""
    packages = {p.parent.name for p in REPO.glob("*/__init__.py")} - {"tests"}
    assert packages <= set(LEVELS), f"give {sorted(packages - set(LEVELS))} a level here"


@pytest.mark.parametrize("area", sorted(LEVELS))
def test_imports_point_down(area):
    wrong = []
    for path in sorted((REPO / area).rglob("*.py")):
        for line, module in imports(path):
            target = area_of(module)
            if target is not None and target != area and LEVELS[target] >= LEVELS[area]:
                wrong.append(f"{path.relative_to(REPO)}:{line} imports {module} "
                             f"({target}, level {LEVELS[target]} ≥ {area}'s {LEVELS[area]})")
    assert not wrong, "\n".join(wrong)


def test_no_code_edits_the_import_path():
    """layers/ and the repository reach Python through the venv's .pth, not sys.path edits."""
    edits = [f"{path.relative_to(REPO)}" for path in project_files()
             if "sys.path" in path.read_text()]
    assert not edits, edits


def test_test_helpers_live_under_tests():
    helpers = [p.relative_to(REPO) for p in project_files()
               if p.stem in ("fixtures", "netspec", "conftest")]
    assert not helpers, helpers


def entry_point_files():
    """Every module that may have a main(): the project's areas and the build recipe's scripts."""
    yield from project_files()
    yield from sorted((REPO / "caffe-recipe").glob("*.py"))


def _is_cli_main(decorator: ast.expr) -> bool:
    call = decorator.func if isinstance(decorator, ast.Call) else decorator
    return (isinstance(call, ast.Name) and call.id == "cli_main") or \
        (isinstance(call, ast.Attribute) and call.attr == "cli_main")


def test_every_entry_point_fails_one_way():
    """Every main() goes through core.errors.cli_main, so the project's errors come out as one
    `<prog>: error: …` line and one exit code everywhere, and no main() writes its own."""
    wrong = []
    for path in entry_point_files():
        for node in ast.parse(path.read_text(), str(path)).body:
            if not (isinstance(node, ast.FunctionDef) and node.name == "main"):
                continue
            where = f"{path.relative_to(REPO)}:{node.lineno}"
            if not any(_is_cli_main(d) for d in node.decorator_list):
                wrong.append(f"{where}: main() without @cli_main(prog)")
            for inner in ast.walk(node):
                if isinstance(inner, ast.Constant) and isinstance(inner.value, str) \
                        and "error: " in inner.value:
                    wrong.append(f"{where}: main() writes its own 'error: ' line "
                                 f"(line {inner.lineno}); raise a ReportedError instead")
    assert not wrong, "\n".join(wrong)
