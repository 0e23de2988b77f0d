"""The import direction the README's layout section draws, checked over the import graph.

The ladder, bottom first; each area may import only areas on a lower level (never a
sibling, never upwards), so the bottom knows nothing of the top:

    0  core                     the catalog, Caffe-file I/O, errors, downloads
    1  nets, layers             the net declarations; the data layers (by bare module name)
    2  surgery, data            weights surgery; the dataset tools (data.registry.from_layers
                                is how the areas above reach layers/)
    3  evaluation               scoring, inference, metrics
    4  training                 the loop, schedules, snapshots
    5  analyses                 the paper's analyses of finished runs
    6  zoo                      the model-zoo packaging
    7  compare, export          the comparison and export tools
    8  demo, bench, paper       the demo, the benchmarks, the paper's tables

Every import counts, wherever it sits (inside functions too): `import x` and `from x import
y`, bare-name imports of layers/ modules, and `importlib.import_module(…)` /
`from_layers(…)` calls whose module name can be read from the code (a literal, an f-string
of literals, or a module-level string constant). Within an area the modules import each
other without a circle. Tests may import anything.
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


IMPORTING_CALLS = {"import_module", "from_layers"}  # importlib's, data.registry's


def _constant_strings(tree: ast.Module) -> dict[str, str]:
    """NAME = "text" assignments at module level (what a call's variable may be resolved to)."""
    return {target.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
            for target in node.targets if isinstance(target, ast.Name)}


def _module_name(arg: ast.expr, constants: dict[str, str]) -> str | None:
    """The module an importing call names, where the code alone says it."""
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if isinstance(arg, ast.Name):
        return constants.get(arg.id)
    if isinstance(arg, ast.JoinedStr):
        parts = [_module_name(v.value if isinstance(v, ast.FormattedValue) else v, constants)
                 for v in arg.values]
        return None if None in parts else "".join(parts)
    return None


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in a file, wherever it sits (in functions too),
    and of every importlib.import_module / from_layers call whose module can be read."""
    tree = ast.parse(path.read_text(), str(path))
    constants = _constant_strings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Call) and node.args and (
                getattr(node.func, "attr", None) in IMPORTING_CALLS
                or getattr(node.func, "id", None) in IMPORTING_CALLS):
            module = _module_name(node.args[0], constants)
            if module is not None:
                found.append((node.lineno, module))
    return found


def module_of(path: Path) -> str:
    """The name a project file is imported by (layers/ by its bare name, as Caffe does)."""
    parts = path.relative_to(REPO).with_suffix("").parts
    if parts[0] == "layers":
        return parts[-1]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_of(path): path for path in project_files()}


def resolve(module: str, known: dict[str, Path]) -> str | None:
    """The project module an import reaches: `from a import b` is a.b when that is a module,
    else a; None outside the project."""
    while module and module not in known:
        module = module.rpartition(".")[0]
    return module or None


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


def test_no_import_circle_within_an_area():
    """Within an area too the imports point one way: a module two others both need lives in
    its own module, so each can be read (and imported) without the other."""
    known = project_modules()
    graph = {name: set() for name in known}
    for name, path in known.items():
        for _, module in imports(path):
            target = resolve(module, known)
            if target is not None and target != name and \
                    area_of(target) == area_of(name):
                graph[name].add(target)
    circles, state = [], {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                circles.append(" → ".join(trail[trail.index(target):] + [target]))
            elif target not in state:
                visit(target, trail + [target])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not circles, "\n".join(circles)


def test_the_ladder_sees_every_kind_of_import(tmp_path):
    """The checks above read bare-name layers/ imports and importing calls, not only the
    import statements of packages."""
    source = tmp_path / "probe.py"
    source.write_text("import importlib\nfrom data.registry import from_layers\n"
                      "NAME = 'voc_layers'\n"
                      "def f(kind):\n"
                      "    from seg_io import FileSource\n"
                      "    importlib.import_module('training.train')\n"
                      "    importlib.import_module(NAME)\n"
                      "    importlib.import_module(f'paper.{\"run\"}')\n"
                      "    importlib.import_module(kind)\n"
                      "    return from_layers('seg_data')\n")
    found = [module for _, module in sorted(imports(source))]
    assert [area_of(m) for m in found] == [None, "data", "layers", "training", "layers",
                                          "paper", "layers"], found


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
