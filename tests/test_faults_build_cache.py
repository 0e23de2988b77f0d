"""The build cache is an input, not a side effect (caffe-recipe/cached.sh, the Makefile's
`built`): a command other than setup/test/demo never fetches or compiles. With a HOME whose
cache is empty it stops in one line naming the missing build and `make setup`; a read-only
~/.cache that holds the build works (no lock file is made); with HOME unset the cache is
found through the user's home in the password database. Real make, real Caffe (a tiny net
through `make infer`) on the cache `make setup` filled, mounted read-only in a private
mount namespace; nothing is built (the recipe key holds the cache's path, so a copy
elsewhere would be another build)."""

import os
import re
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from testkit.tiny_nets import random_caffemodel, write_tiny_deploy

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".venv"
# the variables that place the cache; each test sets its own
CACHE_VARIABLES = ("HOME", "CAFFE_CACHE", "XDG_CACHE_HOME")


def make(*args, env: dict, wrap: list[str] | None = None, timeout: int = 180):
    """make in its own process group, killed whole if it outlives `timeout` (a compile that
    should never have started); returns (exit status, stdout + stderr)."""
    command = [*(wrap or []), "make", "--no-print-directory", *args]
    child = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        out, _ = child.communicate()
        return "timeout", out
    return child.returncode, out


def environment(**cache) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in CACHE_VARIABLES}
    return {**env, "GLOG_minloglevel": "2", **cache}


@pytest.fixture(scope="module")
def entry() -> Path:
    """The finished cache entry the venv runs on (make setup made it)."""
    path = Path((VENV / "caffe-root").read_text().strip())
    assert (path / ".complete").is_file()
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny deploy net, its weights and a picture: what `make infer` needs."""
    root = tmp_path_factory.mktemp("tiny")
    net = write_tiny_deploy(root / "deploy.prototxt")
    weights = random_caffemodel(net, root / "tiny.caffemodel")
    picture = root / "picture.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (20, 24, 3), np.uint8)).save(picture)
    return net, weights, picture


def infer(tiny, out: Path) -> list[str]:
    net, weights, picture = tiny
    return ["infer", f"NET={net}", f"WEIGHTS={weights}", f"IMAGES={picture}", f"OUT={out}"]


def entry_for(home: Path) -> Path:
    """The entry this recipe maps to with HOME=`home` (the key holds the cache's path)."""
    done = subprocess.run(["bash", str(REPO / "caffe-recipe/build.sh"), "--venv", str(VENV),
                           "--print-dir"], env=environment(HOME=str(home)),
                          capture_output=True, text=True, check=True)
    return Path(done.stdout.strip())


@pytest.mark.fault("clear error", guards="silent")
def test_a_command_with_an_empty_cache_names_the_build_and_make_setup(tmp_path, tiny):
    home = tmp_path / "home"
    home.mkdir()
    code, out = make(*infer(tiny, tmp_path / "out"), env=environment(HOME=str(home)))
    assert code == 2, out                           # make's status for a failed recipe
    cache = home / ".cache" / "fcn-caffe"
    assert re.search(f"no finished Caffe build for this recipe at {re.escape(str(cache))}/"
                     f"caffe-cpu-[0-9a-f]{{16}}\\. ", out), out
    assert "run 'make setup' to build it" in out
    assert "building Caffe from source" not in out  # build.sh's first words of a compile
    assert not (home / ".cache").exists()           # nothing fetched, no lock made
    assert not (tmp_path / "out").exists()


@pytest.mark.fault("clear error", guards="silent")
def test_the_same_with_an_unfinished_build_in_the_cache(tmp_path, tiny):
    home = tmp_path / "home"
    half = entry_for(home)
    (half / "src").mkdir(parents=True)              # a build cut short: no .complete
    code, out = make(*infer(tiny, tmp_path / "out"), env=environment(HOME=str(home)))
    assert code == 2 and f"at {half} (a build there is unfinished)" in out, out
    assert sorted(p.name for p in half.iterdir()) == ["src"]   # left for make setup


def read_only(folder: Path) -> list[str]:
    """A command prefix that runs it with `folder` mounted read-only (a private mount
    namespace: nothing outside the command sees it)."""
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("no mount namespace here (unshare -m); needs root or user namespaces")
    return ["unshare", "-m", "sh", "-c",
            'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && exec "$@"',
            str(folder)]


def of_this_build(entry: Path) -> list[str]:
    """What the cache holds for this build: its entry's files and what beside it carries its
    key (its lock). Other builds sharing the cache (another checkout's make setup) may add
    entries and locks of their own meanwhile: those are not this command's writes."""
    key = entry.name.rsplit("-", 1)[1]
    beside = [p.name for p in entry.parent.iterdir() if key in p.name]
    return sorted([*beside, *(str(p.relative_to(entry)) for p in entry.rglob("*"))])


@pytest.mark.fault("correct", guards="unclear")
def test_a_read_only_cache_that_holds_the_build_works(tmp_path, tiny, entry):
    cache = entry.parent.parent                     # ~/.cache, as make setup filled it
    before = of_this_build(entry)
    wrap = read_only(cache)
    code, out = make(*infer(tiny, tmp_path / "out"), env=environment(HOME=os.environ["HOME"]),
                     wrap=wrap)
    assert code == 0, out
    assert ".png" in {p.suffix for p in (tmp_path / "out").iterdir()}   # the label map
    code, out = make("caffe", env=environment(HOME=os.environ["HOME"]), wrap=wrap)
    assert code == 0, out                           # setup's Caffe step reuses it too
    assert of_this_build(entry) == before
    assert Path((VENV / "caffe-root").read_text().strip()) == entry   # venv as it was


@pytest.mark.fault("correct", guards="unclear")
def test_make_with_home_unset_finds_the_cache_of_the_users_home(tmp_path, tiny, entry):
    passwd_home = subprocess.run(["getent", "passwd", str(os.getuid())], capture_output=True,
                                 text=True, check=True).stdout.split(":")[5]
    if Path(entry).parent != Path(passwd_home) / ".cache" / "fcn-caffe":
        pytest.skip(f"the build is not in the passwd home's cache ({passwd_home})")
    code, out = make(*infer(tiny, tmp_path / "out"), env=environment())
    assert code == 0, out
    assert "unbound variable" not in out
    assert ".png" in {p.suffix for p in (tmp_path / "out").iterdir()}   # the label map


@pytest.mark.fault("clear error", guards="unclear")
def test_cached_sh_with_no_home_anywhere_asks_for_home_or_caffe_cache(tmp_path):
    """A user the password database has no home for: one line, no 'unbound variable'."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "getent").write_text("#!/bin/sh\nexit 2\n")    # no passwd entry for this user
    (fake / "getent").chmod(0o755)
    env = environment(PATH=f"{fake}:{os.environ['PATH']}")
    done = subprocess.run(["bash", str(REPO / "caffe-recipe/cached.sh"), "--venv", str(VENV)],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"caffe-recipe/cached.sh: error: HOME is not set and user {os.getuid()} has no home "
        "directory, so the build cache (~/.cache/fcn-caffe) has no place; set HOME, or "
        "CAFFE_CACHE=DIR for the cache folder"]


@pytest.mark.fault("clear error", guards="unclear")
def test_no_venv_is_one_line_naming_make_setup(tmp_path):
    code, out = make("score", "NET=voc-fcn32s", "WEIGHTS=x", f"VENV={tmp_path / 'none'}",
                     env=environment(HOME=str(tmp_path)))
    assert code == 2
    assert f"make: error: no virtualenv at {tmp_path / 'none'}; run 'make setup' first" in out
    assert not (tmp_path / "none").exists()
