"""core.fingerprint: what it finds in this process, its BLAS self-check, digests, diffs, and
`compare` of two runs naming the fingerprint fields that differ."""

import json

import numpy as np
import pytest

from compare.cli import compare_files, detect_kind
from core import fingerprint as fpm


def test_fingerprint_names_the_blas_libcaffe_loaded_and_checks_it():
    fp = fpm.fingerprint()
    assert fp["caffe_recipe"].startswith("caffe-cpu-") or fp["caffe_recipe"].startswith("caffe-")
    assert fp["blas_selfcheck"].startswith("ok: error")
    assert fp["blas_probe"].startswith("sha256:")
    assert fp["numpy"] == np.__version__ and fp["pillow"] and fp["protobuf"]
    assert fp["cpu_model"] and isinstance(fp["env"], dict)
    if {"avx2", "fma"} <= set(fp["cpu_flags"].split()):
        # the recipe's default on such a CPU: the pinned build, whatever this CPU is
        assert fp["numerics"] == "pinned", fp
        assert fp["blas_kernel"] == "HASWELL"
        assert fp["blas_version"] == "OpenBLAS 0.3.21"
        assert "libopenblas_pinned" in fp["blas_path"] and "DYNAMIC_ARCH" not in fp["blas_config"]
        assert fp["blas_thread_invariant"] is True   # caffe-recipe/patches/openblas/0001
    else:
        assert fp["numerics"] == "system"
    assert fp["blas_threads"] >= 1


def test_the_fingerprint_is_json_and_adds_the_run_inputs(tmp_path):
    net = tmp_path / "net.prototxt"
    net.write_text('name: "x"\n')
    fp = fpm.fingerprint(net=net, seed=7)
    assert fp["net"] == fpm.file_digest(net) and fp["seed"] == 7
    assert json.loads(json.dumps(fp)) == fp
    assert "numerics pinned" in fpm.summary(fp) or "numerics system" in fpm.summary(fp)


def test_the_summary_names_the_sgemm_path_the_pinned_library_ran():
    # the two paths give the same bits, so the path is not a bit-deciding field, but a log
    # read later should still say which code computed it (caffe-recipe/NUMERICS.md)
    fp = fpm.fingerprint()
    if fp["blas_sgemm_path"]:
        assert f"({fp['blas_sgemm_path'].upper()} sgemm path)" in fpm.summary(fp)
    assert "(AVX512 sgemm path)" in fpm.summary({**fp, "blas_sgemm_path": "avx512"})
    assert "sgemm path" not in fpm.summary({**fp, "blas_sgemm_path": ""})


def test_self_check_rejects_a_gemm_that_is_wrong():
    x, w = fpm._probe_inputs()
    good = (x.astype(np.float64) @ w.astype(np.float64).T).astype(np.float32)
    assert fpm.check_blas(good, x, w) < 0.05
    bad = good.copy()
    bad[3, 5] += 1e-2    # one element off in its 4th significant digit
    with pytest.raises(fpm.NumericsError, match="CAFFE_BLAS=system"):
        fpm.check_blas(bad, x, w)
    with pytest.raises(fpm.NumericsError):
        fpm.check_blas(np.full_like(good, np.nan), x, w)


def test_caffe_gemm_is_the_blas_sgemm_bit_for_bit():
    # the probe is what Caffe's InnerProduct computes; the fingerprint's library is the one
    # whose own cblas_sgemm returns exactly those bits
    fp = fpm.fingerprint()
    x, w = fpm._probe_inputs()
    ours = fpm.caffe_gemm(x, w)
    assert fpm.digest_bytes(ours.tobytes()) == fp["blas_probe"]
    direct = fpm._sgemm_nt(fpm._open(fpm.Path(fp["blas_path"])), x, w)
    assert direct.tobytes() == ours.tobytes()


def test_blas_environment_records_openblas_variables_as_found():
    env = {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "1048576", "HOME": "/root",
           "OMP_NUM_THREADS": "2", "LD_PRELOAD": "x.so", "PATH": "/bin"}
    assert fpm.blas_environment(env) == {
        "LD_PRELOAD": "x.so", "OMP_NUM_THREADS": "2", "OPENBLAS_CORETYPE": "Haswell",
        "OPENBLAS_L2_SIZE": "1048576"}


def test_split_digest_follows_names_and_file_bytes(tmp_path):
    root = tmp_path / "voc"
    (root / "img").mkdir(parents=True)
    (root / "cls").mkdir()
    for name in ("a", "b", "c"):
        (root / "img" / f"{name}.jpg").write_bytes(name.encode() * 10)
        (root / "cls" / f"{name}.png").write_bytes(name.encode() * 3)
    split = root / "train.txt"
    split.write_text("a\nb\n")
    first = fpm.split_digest(split, root)
    assert first["items"] == 2 and first["files"] == 4
    (root / "img" / "c.jpg").write_bytes(b"changed")         # not in the split
    assert fpm.split_digest(split, root) == first
    (root / "cls" / "b.png").write_bytes(b"bbx")                # in the split
    changed = fpm.split_digest(split, root)
    assert changed["digest"] != first["digest"] and changed["names"] == first["names"]
    split.write_text("b\na\n")                                  # another order
    assert fpm.split_digest(split, root)["names"] != changed["names"]
    split.write_text("a 1\nb -1\n")               # further columns are not part of a name
    assert fpm.split_digest(split, root) == changed
    (root / "zz").mkdir()                          # after the split file in path order too
    (root / "zz" / "a.png").write_bytes(b"z")
    assert fpm.split_digest(split, root)["files"] == 5


def test_digests_are_the_first_16_hex_digits_of_the_sha256(tmp_path):
    import hashlib

    data = b"fcn" * 1000
    (tmp_path / "w").write_bytes(data)
    expected = "sha256:" + hashlib.sha256(data).hexdigest()[:16]
    assert fpm.digest_bytes(data) == fpm.file_digest(tmp_path / "w") == expected


def test_diff_names_each_differing_field():
    a = {"numerics": "pinned", "blas_kernel": "Haswell", "numpy": "2.4.6", "seed": 1}
    b = {"numerics": "native", "blas_kernel": "Cooperlake", "numpy": "2.4.6"}
    assert fpm.diff(a, b) == [("blas_kernel", "Haswell", "Cooperlake"),
                              ("numerics", "pinned", "native"), ("seed", 1, "(absent)")]
    assert [k for k, _, _ in fpm.pinned_differences(a, b)] == ["blas_kernel", "numerics"]


def test_the_thread_count_decides_the_bits_unless_every_library_is_invariant():
    invariant = {"blas_thread_invariant": True, "blas_threads": 1}
    assert fpm.bits_fields(invariant, {**invariant, "blas_threads": 4}) == fpm.PINNED_FIELDS
    for other in (False, None):
        varying = {**invariant, "blas_thread_invariant": other, "blas_threads": 4}
        assert fpm.bits_fields(invariant, varying) == (*fpm.PINNED_FIELDS, "blas_threads")
        assert ("blas_threads", 1, 4) in fpm.pinned_differences(invariant, varying)
    assert fpm.pinned_differences(invariant, {**invariant, "blas_threads": 4}) == []


def write_score(path, mean_iu, **fingerprint):
    base = {"numerics": "pinned", "blas_kernel": "Haswell", "blas_version": "OpenBLAS 0.3.21",
            "blas_probe": "sha256:1", "numpy": "2.4.6"}
    path.write_text(json.dumps({"images": 5, "label": {"mean_iu": mean_iu},
                                "fingerprint": {**base, **fingerprint}}))
    return path


def test_compare_of_two_results_names_the_fingerprint_fields_that_differ(tmp_path):
    a = write_score(tmp_path / "a.json", 0.208)
    b = write_score(tmp_path / "b.json", 0.198, numerics="native", blas_kernel="SkylakeX")
    assert detect_kind(a) == "runs"
    result = compare_files(a, b)
    assert not result.identical
    rows = {row[0]: row[1:] for row in result.rows}
    assert rows == {"label.mean_iu": (0.208, 0.198)}   # numbers decide; the rest is provenance
    provenance = {row[0]: row[1:] for row in result.provenance}
    assert provenance["fingerprint.blas_kernel"] == ("Haswell", "SkylakeX")
    assert "fingerprint.numpy" not in provenance
    assert any("other kernels round differently" in note for note in result.notes)
    same = compare_files(a, write_score(tmp_path / "c.json", 0.208))
    assert same.identical and "IDENTICAL" in same.render()
    code = compare_files(a, write_score(tmp_path / "d.json", 0.3, numpy="2.5.0"))
    assert any("same BLAS kernels" in note for note in code.notes)


def test_compare_reads_a_run_folder_train_log(tmp_path):
    for name, iu, kernel in (("a", 0.2, "Haswell"), ("b", 0.2, "Haswell")):
        run = tmp_path / name
        run.mkdir()
        records = [{"type": "start", "time": 0.0, "fingerprint": {"blas_kernel": kernel}},
                   {"type": "test", "time": 9.0 if name == "a" else 11.0, "iter": 4,
                    "label": {"mean_iu": iu}}]
        (run / "train.jsonl").write_text("\n".join(map(json.dumps, records)) + "\n")
    result = compare_files(tmp_path / "a", tmp_path / "b")
    assert result.identical, result.render()   # the wall clock is not a result


def test_pinned_kernels_are_refused_on_a_cpu_without_avx2_or_fma():
    pinned = [fpm.Path("/cache/openblas-haswell-x/lib/libopenblas_pinned_haswellp-r0.3.21.so")]
    with pytest.raises(fpm.NumericsError, match="lacks avx2 and fma"):
        fpm.check_cpu(pinned, ["sse4_2", "avx"])
    with pytest.raises(fpm.NumericsError, match="lacks fma"):
        fpm.check_cpu(pinned, ["avx", "avx2"])
    fpm.check_cpu(pinned, ["avx", "avx2", "fma"])
    fpm.check_cpu([fpm.Path("/usr/lib/libopenblas.so.0")], ["sse4_2"])   # system: any CPU


def test_the_recipe_links_the_system_openblas_on_a_cpu_without_avx2_or_fma(tmp_path):
    import subprocess

    recipe = fpm.Path(__file__).resolve().parents[1] / "caffe-recipe/openblas.sh"
    for flags, verdict in (("fpu sse4_2 avx", "system"), ("fpu avx avx2", "system"),
                           ("fpu avx avx2 fma bmi2", "pinned")):
        cpuinfo = tmp_path / "cpuinfo"
        cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        # the recipe's own function, reading this file instead of /proc/cpuinfo
        done = subprocess.run(["bash", "-c", f'source <(sed "s#/proc/cpuinfo#{cpuinfo}#" '
                               f'"{recipe}"); cpu_runs_pinned_kernels && echo pinned '
                               f'|| echo system'],
                              capture_output=True, text=True, check=True)
        assert done.stdout.strip() == verdict, flags


def test_a_run_folder_pairs_its_scores_with_its_start_fingerprint(tmp_path):
    """The same scores on other kernels: identical in numbers, the kernel named."""
    for name, kernel in (("a", "HASWELL"), ("b", "SkylakeX")):
        run = tmp_path / name
        run.mkdir()
        (run / "train.jsonl").write_text(json.dumps(
            {"type": "start", "fingerprint": {"blas_kernel": kernel}}) + "\n")
        (run / "score.json").write_text(json.dumps({"label": {"mean_iu": 0.2}}))
    result = compare_files(tmp_path / "a", tmp_path / "b")
    assert result.rows == []
    assert [row[0] for row in result.provenance] == ["fingerprint.blas_kernel"]
    assert result.identical and result.render().endswith("IDENTICAL IN NUMBERS")
