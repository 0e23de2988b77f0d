"""Facts the project once typed in many places are defined once, and read from there.

The repository root, the dataset registry, the void label, the test interval and Caffe's
log level each have one definition (core/defaults.py, core/catalog.py); a second
definition elsewhere, or a literal where the name belongs, fails here with its file and line.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from core import catalog, defaults

REPO = Path(__file__).resolve().parents[1]
AREAS = ("core", "nets", "layers", "surgery", "data", "evaluation", "training", "analyses",
         "zoo", "compare", "export", "demo", "bench", "paper")


def project_files() -> list[Path]:
    return [p for area in AREAS for p in sorted((REPO / area).rglob("*.py"))]


def where(path: Path, line: int) -> str:
    return f"{path.relative_to(REPO)}:{line}"


def module_assignments(name: str) -> list[str]:
    """file:line of every module-level assignment to `name` in the project."""
    found = []
    for path in project_files():
        for node in ast.parse(path.read_text(), str(path)).body:
            targets = (node.targets if isinstance(node, ast.Assign)
                       else [node.target] if isinstance(node, ast.AnnAssign) else [])
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                found.append(where(path, node.lineno))
    return found


@pytest.mark.parametrize("name,home", [
    ("DATASETS", "core/catalog.py"),
    ("VOID", "core/catalog.py"),
    ("REPO", "core/defaults.py"),
    ("SEED", "core/defaults.py"),
    ("TEST_EVERY", "core/defaults.py"),
])
def test_one_definition(name, home):
    found = module_assignments(name)
    assert [f.rsplit(":", 1)[0] for f in found] == [home], found


def test_the_repository_root_is_derived_from_a_file_path_once():
    pattern = re.compile(r"Path\(__file__\)\.resolve\(\)\.parents\[")
    found = [where(path, n) for path in project_files()
             for n, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert [f.rsplit(":", 1)[0] for f in found] == ["core/defaults.py"], found
    assert defaults.REPO == REPO


def test_losses_ignore_the_catalogs_void_label():
    literal = re.compile(r"ignore_label\s*=\s*\d")
    found = [where(path, n) for path in project_files()
             for n, line in enumerate(path.read_text().splitlines(), 1) if literal.search(line)]
    assert not found, f"ignore_label typed as a number (use core.catalog.VOID): {found}"
    assert catalog.VOID == 255


def test_caffes_log_level_is_set_in_one_place():
    """core.defaults.quiet_caffe_log, called by the venv's .pth; no recipe or script sets it."""
    recipes = [where(path, n) for path in [REPO / "Makefile", *sorted((REPO / "mk").glob("*.mk"))]
               for n, line in enumerate(path.read_text().splitlines(), 1)
               if "GLOG_minloglevel" in line]
    assert not recipes, recipes
    setters = [where(path, n) for path in project_files()
               for n, line in enumerate(path.read_text().splitlines(), 1)
               if re.search(r"setdefault\(\s*\"GLOG_minloglevel\"", line)]
    assert [f.rsplit(":", 1)[0] for f in setters] == ["core/defaults.py"], setters
    assert "core.defaults.quiet_caffe_log()" in (REPO / "Makefile").read_text()


def test_quiet_caffe_log_keeps_a_level_the_user_set():
    assert defaults.quiet_caffe_log({})["GLOG_minloglevel"] == defaults.CAFFE_LOG_LEVEL
    assert defaults.quiet_caffe_log({"GLOG_minloglevel": "0"})["GLOG_minloglevel"] == "0"
