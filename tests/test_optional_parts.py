"""A test needing an optional part (ONNX, PyTorch, Ray, qemu) skips with one line naming the
make target that installs it, except under `make test`, which installs them all: there a
missing part fails (testkit/optional.py)."""

import os
import subprocess
import sys
from pathlib import Path

from testkit import optional

REPO = Path(__file__).resolve().parents[1]

NEEDS_A_MISSING_PART = '''
from testkit import optional

optional.INSTALLED_BY["no_such_package_for_fcn"] = "export-deps"
optional.require_modules("numpy", "no_such_package_for_fcn")


def test_never_reached():
    raise AssertionError("ran without its optional part")
'''


def run_pytest(test_file: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != optional.OPTIONAL_PARTS_ENV}
    environment["PYTHONPATH"] = str(REPO / "tests")  # testkit, as the suite's rootdir gives it
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                           str(test_file.parent)], cwd=test_file.parent, capture_output=True,
                          text=True, env={**environment, **env}, timeout=300)


def test_a_missing_part_skips_naming_its_make_target_outside_make_test(tmp_path):
    test_file = tmp_path / "test_needs_a_missing_part.py"
    test_file.write_text(NEEDS_A_MISSING_PART)
    (tmp_path / "test_needs_nothing.py").write_text("def test_runs():\n    pass\n")
    alone = run_pytest(test_file)
    required = run_pytest(test_file, **{optional.OPTIONAL_PARTS_ENV: "required"})
    assert alone.returncode == 0, alone.stdout[-2000:]
    assert "1 passed, 1 skipped" in alone.stdout
    assert "no_such_package_for_fcn, not installed: `make export-deps` installs it" in \
        alone.stdout
    assert required.returncode != 0 and "never reached" not in required.stdout
    assert "make test` installs every optional part" in required.stdout


def test_make_test_requires_the_optional_parts():
    recipe = (REPO / "Makefile").read_text().split("\ntest: setup\n", 1)[1].split("\n\n")[0]
    assert f"{optional.OPTIONAL_PARTS_ENV}=required $(PY) -m pytest" in recipe


def test_mutation_runs_require_the_optional_parts_too():
    """A target whose tests skipped would count every mutant as a survivor."""
    driver = (REPO / "tests" / "mutate.py").read_text()
    assert f'os.environ["{optional.OPTIONAL_PARTS_ENV}"] = "required"' in driver


def test_every_optional_part_names_a_target_the_makefiles_define():
    makefiles = "\n".join(p.read_text() for p in [REPO / "Makefile", *REPO.glob("mk/*.mk")])
    test_needs = {name for line in makefiles.splitlines() if line.startswith("test:")
                  for name in line.split(":", 1)[1].split()}
    for part, target in optional.INSTALLED_BY.items():
        assert f"\n{target}:" in makefiles, f"{part}: no make target {target}"
        assert target in test_needs, f"{part}: `make test` does not install it ({target})"
