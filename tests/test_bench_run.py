"""bench end to end at a toy size: Section 3.1's equivalence, data waiting, memory, the
levers' list and the results files. No timing is asserted; only what the numbers mean."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

# bench.levers and bench.patches import the torch peer: skip the module, not error, without it
from testkit.optional import require_modules

require_modules("torch")  # the bench peer

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from bench import levers, patches  # noqa: E402
from bench.data_rate import iterations  # noqa: E402
from bench.models import fill_weights, train_net  # noqa: E402
from bench.run import REPO, main  # noqa: E402
from data.synthetic import make_dataset  # noqa: E402


def test_grid_equals_classifier_on_each_patch(tmp_path):
    result = patches.run(tmp_path, grid=3, width=1 / 16, repeats=1)
    assert result["image"] == 227 + 2 * 32
    assert result["max_relative_difference"] < 1e-5
    assert result["naive_flops"] > result["convolutional_flops"]  # the overlap is shared


def test_patches_are_taken_at_the_output_stride():
    image = np.arange(3 * 291 * 291, dtype=np.float32).reshape(1, 3, 291, 291)
    crops = patches.patches_of(image, 3)
    assert crops.shape == (9, 3, 227, 227)
    assert crops[4, 0, 0, 0] == image[0, 0, 32, 32] and crops[8, 2, -1, -1] == image[0, 2, -1, -1]


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory):
    return make_dataset("voc", tmp_path_factory.mktemp("data"), n_train=3, n_val=3,
                        size=(48, 64))


def test_data_wait_is_a_share_of_the_iteration(tmp_path, voc_root):
    net, _ = train_net("voc-fcn32s", voc_root, tmp_path, width=1 / 16)
    fill_weights(net)
    result = iterations(net, 2)
    assert len(result["runs_s"]) == len(result["data_wait_s"]) == 2
    assert 0 < result["data_wait_fraction"] < 1
    assert all(d < t for d, t in zip(result["data_wait_s"], result["runs_s"]))
    assert np.isfinite(net.blobs["loss"].data).all()


def test_memory_probe_reports_peak_rss(voc_root):
    done = subprocess.run([sys.executable, "-m", "bench.memory", "--experiment", "voc-fcn32s",
                           "--data-root", str(voc_root), "--width", "0.0625",
                           "--iterations", "1"], cwd=REPO, capture_output=True, text=True,
                          timeout=120, check=True)
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["peak_rss_mib"] >= result["peak_rss_mib_after_setup"] > \
        result["peak_rss_mib_at_start"] > 0
    assert result["input_shape"] == [1, 3, 48, 64] and result["prefetch"] is False


def test_levers_listed_only_when_available(tmp_path):
    links = tmp_path / "links"
    names = [name for name, _, _ in levers.levers(2, tmp_path, links_dir=links)]
    assert names[0] == "default" and "system-openblas" in names
    assert "blis-pthread" not in names and "mkl" not in names
    (tmp_path / "blis-pthread").mkdir()
    (tmp_path / "blis-pthread/libopenblas.so.0").write_bytes(b"")
    mkl = tmp_path / "mkl-1/libmkl_rt.so.3"
    mkl.parent.mkdir()
    mkl.write_bytes(b"")
    found = {name: env for name, env, _ in levers.levers(2, tmp_path, mkl=mkl, links_dir=links)}
    # each BLAS answers to the file name libcaffe asks for, first on LD_LIBRARY_PATH
    folder = Path(found["blis-pthread"]["LD_LIBRARY_PATH"].split(os.pathsep)[0])
    link = folder / levers.caffe_blas_name()
    assert link.resolve() == (tmp_path / "blis-pthread/libopenblas.so.0").resolve()
    assert found["blis-pthread"]["BLIS_NUM_THREADS"] == "2"
    assert found["mkl"]["LD_LIBRARY_PATH"].split(os.pathsep)[1] == str(mkl.parent)
    assert "MKL_CBWR" not in found["mkl"] and found["mkl-cnr-avx2"]["MKL_CBWR"] == "AVX2,STRICT"


def test_a_blas_lever_really_replaces_caffes_blas(tmp_path):
    """The pinned build links libopenblas_pinned.so.0; a lever must make that name load the
    other library, or every lever row would silently time the default again."""
    found = {name: env for name, env, _ in levers.levers(2, tmp_path, links_dir=tmp_path)}
    if "system-openblas" not in found:
        pytest.skip("no system OpenBLAS here")
    rows = {}
    for name in ("default", "system-openblas"):
        done = subprocess.run([sys.executable, "-m", "bench.probe", "--sgemm-only",
                               "--sgemm-n", "64"], cwd=REPO, capture_output=True, text=True,
                              env=levers.child_environment(found[name]), timeout=120,
                              check=True)
        rows[name] = json.loads(done.stdout.splitlines()[-1])
    assert rows["default"]["blas"]["path"] != rows["system-openblas"]["blas"]["path"]
    assert Path(rows["system-openblas"]["blas"]["path"]) == levers.SYSTEM_OPENBLAS.resolve()
    assert all(row["correct"] for row in rows.values())


def test_bench_writes_json_and_table(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--name", "smoke", "--width", "0.0625",
                 "--size", "64", "64", "--nets", "voc-fcn8s", "--repeats", "1",
                 "--train-repeats", "1", "--sgemm-n", "256", "--grid", "3", "--data-images", "3",
                 "--skip", "levers", "memory", "gpu", "breakdown"]) == 0
    results = json.loads((tmp_path / "smoke.json").read_text())
    fcn8s = results["nets"]["voc-fcn8s"]
    assert fcn8s["train_flops"] > 2 * fcn8s["forward_flops"]
    assert results["peer"]["max_relative_difference"] < 1e-4
    assert results["peer"]["argmax_agreement"] > 0.99
    # the inference peers: compared, then timed, where installed (`make test` installs both)
    for engine, row in results["engines"].items():
        if importlib.util.find_spec(engine) is not None:
            assert row["max_relative_difference"] < 1e-4 and row["forward"]["median_s"] > 0
            assert row["threads"] == results["timing_threads"]
    assert results["patches"]["max_relative_difference"] < 1e-4
    assert 0 <= results["data"]["wait_fraction_prefetch"] < 1
    # the thread rows: the patched library gives one forward output at 1, 2 (and all)
    # threads and says it is invariant; the library before the patch, where built, is not
    rows = {row["key"]: row for row in results["threads"]["rows"]}
    patched = [row for row in rows.values() if row["blas"] == "patched"]
    assert {"patched-1", "patched-2"} <= rows.keys()
    for row in patched:
        assert row["thread_invariant"] is True and row["bits_equal_reference"], row
        assert row["threads_used"] == row["threads"]
    before = rows["before-2"]
    if "skipped" not in before:
        assert before["thread_invariant"] is False
        assert before["blas_info"]["path"] != rows["patched-2"]["blas_info"]["path"]
        assert results["threads"]["cost_of_invariance"]["forward"] > 0
    table = (tmp_path / "smoke.md").read_text()
    assert "| FCN-8s Caffe |" in table and "| FCN-8s PyTorch" in table
    assert all(f"Caffe / {engine} time, forward" in table for engine, row
               in results["engines"].items() if "forward" in row)
    assert "patched OpenBLAS, 1 thread |" in table
    assert table in capsys.readouterr().out


def test_machine_bound_is_compared_with_caffes_blas_from_the_same_table():
    # the run's first in-process probe can be slowed by start-up; the side-by-side table's
    # default row is measured exactly as the other options are
    rows = [{"lever": "default", "sgemm": {"gflops": 136.0}},
            {"lever": "openblas-numpy", "sgemm": {"gflops": 142.6}},
            {"lever": "mkl", "error": "timed out"}]
    assert levers.default_gflops(rows, 108.9) == 136.0
    assert levers.default_gflops(rows[1:], 108.9) == 108.9
