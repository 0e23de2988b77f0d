"""Run Caffe's own scripts/download_model_binary.py on a zoo folder, unmodified.

The script is Python 3 clean (print(), six.moves.urllib) but calls `yaml.load(text)`
without a Loader, which PyYAML 6 (2021 on; the only line with Python 3.11 wheels) rejects:
"load() missing 1 required positional argument: 'Loader'"; the script then reports
"Must be valid Caffe model directory with a correct readme.md" and exits with status 2.
The minimal working invocation gives yaml.load a default safe Loader in the interpreter
and runs the script file as __main__ (SHIM below); nothing in Caffe's tree changes.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

from core.errors import cli_main
from zoo.errors import ZooError

SHIM = ("import functools, runpy, sys, yaml; "
        "yaml.load = functools.partial(yaml.load, Loader=yaml.SafeLoader); "
        "sys.argv = sys.argv[1:]; "
        "runpy.run_path(sys.argv[0], run_name='__main__')")


def downloader_script() -> Path:
    """scripts/download_model_binary.py of the Caffe source tree pycaffe comes from."""
    spec = importlib.util.find_spec("caffe")
    if spec is None or spec.origin is None:
        raise ZooError("pycaffe is not importable: run `make setup` first")
    script = Path(spec.origin).resolve().parents[2] / "scripts" / "download_model_binary.py"
    if not script.is_file():
        raise ZooError(f"{script}: not found in the Caffe source tree")
    return script


def downloader_command(model_dir: Path | str, *, as_is: bool = False,
                       script: Path | None = None, python: str = sys.executable) -> list[str]:
    """The command line that runs Caffe's downloader on model_dir (with the yaml shim)."""
    script = script or downloader_script()
    if as_is:
        return [python, str(script), str(model_dir)]
    return [python, "-c", SHIM, str(script), str(model_dir)]


@cli_main("zoo-downloader", exit_code=2)
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zoo.caffe_downloader",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path, help="a zoo folder with readme.md")
    parser.add_argument("--as-is", action="store_true",
                        help="without the yaml shim (fails under PyYAML 6, see the docstring)")
    args = parser.parse_args(argv)
    return subprocess.call(downloader_command(args.model_dir, as_is=args.as_is))


if __name__ == "__main__":
    sys.exit(main())
