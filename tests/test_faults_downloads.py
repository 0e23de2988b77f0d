"""Downloads with no known checksum, against a 127.0.0.1 server: a transfer cut with and
without Content-Length is never promoted under the final name; what is accepted has its
sha256 recorded and is re-verified on the next run; a failing file is moved aside."""

import gzip
import hashlib
import inspect
import io
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from core.download import REJECTED, DownloadError, fetch, sidecar, structural_check, verify
from core.download import main as download_main
from testkit.http_files import serving
from testkit.tiny_nets import write_tiny_deploy


@pytest.fixture
def server():
    with serving() as handler:
        yield handler


def archive_bytes() -> bytes:
    """A tar.gz of incompressible members: half of it cannot list to its end."""
    rng = np.random.RandomState(0)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for k in range(4):
            data = rng.bytes(50_000)
            info = tarfile.TarInfo(f"nyud/data/images/img_{k}.png")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.fault("clear error", guards="trusted-corrupt")
def test_a_cut_archive_without_length_or_digest_is_moved_aside_not_promoted(server, tmp_path):
    body = archive_bytes()
    server.files["/nyud.tar.gz"] = body
    server.no_length.add("/nyud.tar.gz")
    server.cut.add("/nyud.tar.gz")
    dest = tmp_path / "nyud.tar.gz"
    with pytest.raises(DownloadError, match=r"fails verification .*not a whole"):
        fetch(f"{server.url}/nyud.tar.gz", dest, progress=False)
    assert not dest.exists() and not sidecar(dest).exists()
    aside = tmp_path / f"nyud.tar.gz.part{REJECTED}"
    assert aside.read_bytes() == body[: len(body) // 2]
    # the next run fetches it anew and accepts it because it lists completely
    fetch(f"{server.url}/nyud.tar.gz", dest, progress=False)
    assert dest.read_bytes() == body
    recorded = sidecar(dest).read_text()
    assert recorded.split()[0] == sha256(body) and "tar archive lists completely" in recorded


@pytest.mark.fault("correct", guards="trusted-corrupt")
def test_a_cut_transfer_with_length_is_resumed_and_accepted_by_its_length(server, tmp_path):
    body = np.random.RandomState(1).bytes(300_000)
    server.files["/splits.bin"] = body
    server.cut.add("/splits.bin")
    dest = fetch(f"{server.url}/splits.bin", tmp_path / "splits.bin", progress=False)
    assert dest.read_bytes() == body
    assert [r for p, r in server.log] == [None, f"bytes={len(body) // 2}-"]
    assert sidecar(dest).read_text().split()[0] == sha256(body)
    assert "Content-Length" in sidecar(dest).read_text()


@pytest.mark.fault("clear error", guards="trusted-corrupt")
def test_no_length_no_digest_no_check_is_refused_and_the_part_kept(server, tmp_path):
    body = b"x" * 100_000
    server.files["/unknown.bin"] = body
    server.no_length.add("/unknown.bin")
    dest = tmp_path / "unknown.bin"
    with pytest.raises(DownloadError, match="cut transfer cannot be told from a whole one"):
        fetch(f"{server.url}/unknown.bin", dest, progress=False)
    assert not dest.exists()
    assert (tmp_path / "unknown.bin.part").read_bytes() == body


@pytest.mark.fault("clear error", guards="trusted-corrupt")
def test_a_cut_mat_file_without_length_fails_its_check(server, tmp_path):
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"trainNdxs": np.arange(1, 796)[:, None],
                              "testNdxs": np.arange(796, 1450)[:, None]})
    body = buffer.getvalue()
    server.files["/splits.mat"] = body
    server.no_length.add("/splits.mat")
    server.cut.add("/splits.mat")
    with pytest.raises(DownloadError, match="splits.mat"):
        fetch(f"{server.url}/splits.mat", tmp_path / "splits.mat", progress=False)
    assert not (tmp_path / "splits.mat").exists()
    fetch(f"{server.url}/splits.mat", tmp_path / "splits.mat", progress=False)
    assert ".mat file loads" in sidecar(tmp_path / "splits.mat").read_text()


@pytest.mark.fault("correct", guards="trusted-corrupt")
def test_an_accepted_file_damaged_later_is_moved_aside_and_fetched_again(server, tmp_path):
    body = archive_bytes()
    server.files["/SiftFlowDataset.tar.gz"] = body
    server.no_length.add("/SiftFlowDataset.tar.gz")
    dest = tmp_path / "SiftFlowDataset.tar.gz"
    fetch(f"{server.url}/SiftFlowDataset.tar.gz", dest, progress=False)
    requests = len(server.log)
    fetch(f"{server.url}/SiftFlowDataset.tar.gz", dest, progress=False)  # re-verified, kept
    assert len(server.log) == requests
    damaged = bytearray(body)
    damaged[1000] ^= 0xFF
    dest.write_bytes(bytes(damaged))
    fetch(f"{server.url}/SiftFlowDataset.tar.gz", dest, progress=False)
    assert dest.read_bytes() == body and len(server.log) == requests + 1
    assert (tmp_path / f"SiftFlowDataset.tar.gz{REJECTED}").read_bytes() == bytes(damaged)


@pytest.mark.fault("correct", guards="trusted-corrupt")
def test_a_file_placed_by_hand_is_checked_and_recorded(tmp_path):
    dest = tmp_path / "nyud.tar.gz"
    dest.write_bytes(archive_bytes())
    fetch("http://127.0.0.1:9/nyud.tar.gz", dest, progress=False)  # no network needed
    assert "tar archive lists completely" in sidecar(dest).read_text()


@pytest.mark.fault("clear error", guards="trusted-corrupt")
def test_structural_checks_catch_cut_files(tmp_path):
    body = archive_bytes()
    cut = tmp_path / "a.tar.gz"
    cut.write_bytes(body[: len(body) // 2])
    with pytest.raises(ValueError, match="not a whole"):
        structural_check(cut)
    plain = tmp_path / "b.gz.tar"
    plain.write_bytes(gzip.decompress(body)[:70_000])
    with pytest.raises(ValueError):
        structural_check(plain)
    assert structural_check(tmp_path / "c.txt") is None


@pytest.mark.fault("clear error", guards="trusted-corrupt")
def test_a_caffemodel_url_download_is_checked_before_it_is_kept(server, tmp_path):
    """zoo.fetch with a release-style caffemodel-url and no known digest: a cut file is
    moved aside, never left under the final name to be trusted later."""
    import caffe
    from caffe.proto import caffe_pb2

    from zoo.errors import ZooError
    from zoo.fetch import import_weights

    net = caffe_pb2.NetParameter()
    layer = net.layer.add(name="conv1", type="Convolution")
    blob = layer.blobs.add()
    blob.shape.dim.extend([4, 3, 3, 3])
    blob.data.extend(np.random.RandomState(2).rand(108).tolist())
    body = net.SerializeToString()
    server.files["/w.caffemodel"] = body
    server.no_length.add("/w.caffemodel")
    server.cut.add("/w.caffemodel")
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "caffemodel-url").write_text(f"{server.url}/w.caffemodel\n")
    deploy = caffe.NetSpec()  # the net the weights are checked against
    deploy.data = caffe.layers.Input(shape=dict(dim=[1, 3, 8, 8]))
    deploy.conv1 = caffe.layers.Convolution(deploy.data, num_output=4, kernel_size=3,
                                            bias_term=False)  # the weights hold no bias
    (folder / "deploy.prototxt").write_text(str(deploy.to_proto()))
    with pytest.raises(ZooError, match="fails verification"):
        import_weights(folder, progress=False)
    assert not (folder / "w.caffemodel").exists()
    assert import_weights(folder, progress=False).read_bytes() == body


def cut_after_a_layer(tmp_path):
    """A tiny deploy net and its weights with the last learned layer's blobs left out: a
    transfer cut between two layers, which parses as a whole caffemodel."""
    import caffe
    from caffe.proto import caffe_pb2

    folder = tmp_path / "model"
    folder.mkdir()
    deploy = write_tiny_deploy(folder / "deploy.prototxt")
    whole = tmp_path / "whole.caffemodel"
    caffe.Net(str(deploy), caffe.TEST).save(str(whole))
    param = caffe_pb2.NetParameter()
    param.ParseFromString(whole.read_bytes())
    last = [layer for layer in param.layer if layer.blobs][-1]
    del last.blobs[:]
    return folder, param.SerializeToString(), last.name


@pytest.mark.fault("clear error", guards="trusted-corrupt")
def test_a_caffemodel_cut_between_layers_is_refused_by_its_deploy_net(server, tmp_path):
    from zoo.errors import ZooError
    from zoo.fetch import import_weights

    folder, body, missing = cut_after_a_layer(tmp_path)
    server.files["/w.caffemodel"] = body
    (folder / "caffemodel-url").write_text(f"{server.url}/w.caffemodel\n")
    with pytest.raises(ZooError, match=f"no parameters for layer '{missing}'"):
        import_weights(folder, progress=False)
    assert not (folder / "w.caffemodel").exists()


@pytest.mark.fault("clear error", guards="trusted-corrupt")
def test_a_caffemodel_with_no_digest_and_no_deploy_net_is_not_called_good(server, tmp_path):
    from zoo.errors import ZooError
    from zoo.fetch import import_weights

    folder, body, _ = cut_after_a_layer(tmp_path)
    (folder / "deploy.prototxt").unlink()
    server.files["/w.caffemodel"] = body
    (folder / "caffemodel-url").write_text(f"{server.url}/w.caffemodel\n")
    with pytest.raises(ZooError, match="no digest is known and no deploy.prototxt"):
        import_weights(folder, progress=False)
    assert not (folder / "w.caffemodel").exists()


# --- bounded waits: a stalled or silent server ends in one clear error ---------------------
@pytest.mark.fault("clear error", guards="silent")
def test_a_transfer_that_stalls_is_resumed_a_bounded_number_of_times_then_refused(
        server, tmp_path, capsys):
    body = np.random.RandomState(4).bytes(90_000)
    server.files["/w.caffemodel"] = body
    server.stall.add("/w.caffemodel")
    dest = tmp_path / "w.caffemodel"
    began = time.monotonic()
    with pytest.raises(DownloadError, match=r"gave up after 3 tries in \d+ s \(no answer or "
                                            r"no data for 0.3 s\)") as refused:
        fetch(f"{server.url}/w.caffemodel", dest, sha256=sha256(body), retries=2,
              timeout=0.3, progress=False)
    assert time.monotonic() - began < 10
    part = tmp_path / "w.caffemodel.part"
    assert f"the partial file {part}" in str(refused.value) and "the next run resumes" in str(
        refused.value)
    assert 0 < part.stat().st_size < len(body) and not dest.exists()
    stalls = [line for line in capsys.readouterr().err.splitlines() if "no data for" in line]
    assert len(stalls) == 3 and "resuming (try 2 of 3)" in stalls[0]
    assert "no tries left" in stalls[-1]
    # each line shows how far the file got: the stall is visible, not a frozen bar
    assert [int(line.split(" at ")[1].split()[0]) for line in stalls] == sorted(
        int(line.split(" at ")[1].split()[0]) for line in stalls)
    assert len(server.log) == 3 and server.log[1][1] is not None  # resumed with Range


@pytest.mark.fault("clear error", guards="silent")
def test_a_server_that_never_answers_times_out_and_says_so(server, tmp_path, capsys):
    server.files["/x.tar.gz"] = b"never sent"
    server.silent.add("/x.tar.gz")
    began = time.monotonic()
    with pytest.raises(DownloadError, match="gave up after 2 tries") as refused:
        fetch(f"{server.url}/x.tar.gz", tmp_path / "x.tar.gz", retries=1, timeout=0.3,
              progress=False)
    assert time.monotonic() - began < 10
    err = capsys.readouterr().err
    assert "x.tar.gz: no answer or no data for 0.3 s at 0 bytes; resuming (try 2 of 2)" in err
    # no byte came, so no part file was made: the message says 0 bytes, not a made-up size
    assert f"the partial file {tmp_path / 'x.tar.gz.part'} (0 bytes)" in str(refused.value)
    assert not (tmp_path / "x.tar.gz.part").exists()


@pytest.mark.fault("clear error", guards="silent")
def test_the_whole_download_stops_at_its_time_budget(server, tmp_path):
    body = np.random.RandomState(5).bytes(30_000)
    server.files["/slow.bin"] = body
    server.stall.add("/slow.bin")
    began = time.monotonic()
    # without the budget, 9 tries and their waits would take 25 s and end in another message
    with pytest.raises(DownloadError, match=r"the time budget of 1 s ran out"):
        fetch(f"{server.url}/slow.bin", tmp_path / "slow.bin", sha256=sha256(body),
              retries=8, timeout=0.4, budget=1.0, progress=False)
    assert time.monotonic() - began < 5


@pytest.mark.fault("clear error", guards="silent")
def test_a_server_trickling_bytes_is_stopped_at_the_budget_mid_transfer(server, tmp_path):
    """A byte every so often never trips the per-read timeout: only the budget, checked
    between reads, stops it (the rest would take 3 s)."""
    body = np.random.RandomState(7).bytes(60_000)
    server.files["/trickle.bin"] = body
    server.trickle["/trickle.bin"] = 0.05
    began = time.monotonic()
    with pytest.raises(DownloadError, match=r"gave up after 1 try in \d+ s \(the time budget "
                                            r"of 1 s ran out\)"):
        fetch(f"{server.url}/trickle.bin", tmp_path / "trickle.bin", sha256=sha256(body),
              retries=0, timeout=2.0, budget=1.0, progress=False)
    assert time.monotonic() - began < 2
    assert 0 < (tmp_path / "trickle.bin.part").stat().st_size < len(body)


@pytest.mark.fault("clear error", guards="silent")
def test_no_single_wait_runs_past_the_budget_even_when_its_timeout_is_longer(
        server, tmp_path):
    server.files["/x.bin"] = b"never sent"
    server.silent.add("/x.bin")
    began = time.monotonic()
    with pytest.raises(DownloadError, match=r"the time budget of 1 s ran out"):
        fetch(f"{server.url}/x.bin", tmp_path / "x.bin", retries=0, timeout=5.0, budget=1.0,
              progress=False)
    assert time.monotonic() - began < 3   # the 5 s timeout, cut to the budget's 1 s


@pytest.mark.fault("correct", guards="silent")
def test_a_server_slower_than_a_second_but_within_the_timeout_is_waited_for(
        server, tmp_path):
    body = np.random.RandomState(8).bytes(10_000)
    server.files["/late.bin"] = body
    server.delay["/late.bin"] = 1.5
    dest = fetch(f"{server.url}/late.bin", tmp_path / "late.bin", sha256=sha256(body),
                 retries=0, timeout=5.0, budget=10.0, progress=False)
    assert dest.read_bytes() == body


@pytest.mark.fault("clear error", guards="silent")
def test_the_waits_between_tries_double_from_a_fifth_of_a_second_up_to_five_seconds(
        server, tmp_path, monkeypatch, capsys):
    """The back-off itself, recorded instead of slept (the next test sleeps for real)."""
    body = np.random.RandomState(9).bytes(300_000)
    server.files["/cut.bin"] = body
    server.always_cut.add("/cut.bin")
    waits = []
    monkeypatch.setattr(time, "sleep", waits.append)
    with pytest.raises(DownloadError, match="gave up after 8 tries"):
        fetch(f"{server.url}/cut.bin", tmp_path / "cut.bin", sha256=sha256(body), retries=7,
              progress=False)
    assert waits == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0])
    assert len(server.log) == 8
    missing = len(body) - (tmp_path / "cut.bin.part").stat().st_size
    assert f"IncompleteRead(0 bytes read, {missing} more expected)" in capsys.readouterr().err


@pytest.mark.fault("clear error", guards="silent")
def test_a_budget_already_spent_asks_nothing_and_says_so(server, tmp_path):
    server.files["/n.bin"] = b"data"
    with pytest.raises(DownloadError, match=r"gave up after 0 tries in 0 s \(the time budget "
                                            r"of 0 s ran out\); the partial file .* \(0 bytes\)"):
        fetch(f"{server.url}/n.bin", tmp_path / "n.bin", budget=0.0, progress=False)
    assert server.log == []


@pytest.mark.fault("clear error", guards="silent")
def test_the_waits_between_tries_are_slept_and_the_last_one_is_cut_to_the_budget(
        server, tmp_path):
    """Tries at 0, 0.2, 0.6 and 1.4 s; the fourth wait (1.6 s) ends at the budget's 2.2 s
    instead of 3.0 s. Measured on the server's clock: when each request came."""
    body = np.random.RandomState(10).bytes(300_000)
    server.files["/cut.bin"] = body
    server.always_cut.add("/cut.bin")
    began = time.monotonic()
    with pytest.raises(DownloadError, match=r"gave up after 4 tries in (\d+) s \(the time "
                                            r"budget of 2.2 s ran out\)") as refused:
        fetch(f"{server.url}/cut.bin", tmp_path / "cut.bin", sha256=sha256(body), retries=9,
              budget=2.2, progress=False)
    ended = time.monotonic()
    gaps = [b - a for a, b in zip(server.times, server.times[1:])]
    assert len(gaps) == 3 and all(gap >= wait for gap, wait in zip(gaps, [0.2, 0.4, 0.8]))
    assert ended - began < 2.2 + 0.5
    reported = int(str(refused.value).split(" tries in ")[1].split()[0])
    assert abs(reported - (ended - began)) < 0.6   # the seconds the message says are real


# --- what a check lets through: each check in both directions ------------------------------
def hdf5_file(path, version: int, at: int, size: int) -> None:
    """A v7.3-style .mat file of `size` bytes: an HDF5 superblock of `version` at byte `at`
    (after a user block) stating that the file ends at `size` (the HDF5 spec's layout:
    size of offsets at byte 13 or 9, the base address at 24, 28 or 12, the end-of-file
    address two addresses after it)."""
    sizes_at, base_at = {0: (13, 24), 1: (13, 28), 2: (9, 12), 3: (9, 12)}[version]
    head = bytearray(size)
    head[:10] = b"MATLAB 7.3"
    head[at:at + 8] = b"\x89HDF\r\n\x1a\n"
    head[at + 8] = version
    head[at + sizes_at] = 8
    head[at + base_at:at + base_at + 8] = at.to_bytes(8, "little")
    head[at + base_at + 8:at + base_at + 16] = b"\xff" * 8   # the next address: undefined
    head[at + base_at + 16:at + base_at + 24] = (size - at).to_bytes(8, "little")
    # then the driver block's address (v0/1: undefined, all ones) or the root group's (v2/3)
    after = b"\xff" * 8 if version < 2 else (48).to_bytes(8, "little")
    head[at + base_at + 24:at + base_at + 32] = after
    path.write_bytes(bytes(head))


@pytest.mark.fault("clear error", guards="trusted-corrupt")
@pytest.mark.parametrize("version,at", [(0, 0), (1, 512), (2, 1024), (3, 2048)])
def test_a_v73_mat_file_is_whole_to_the_byte_its_superblock_states(tmp_path, version, at):
    path = tmp_path / "labels.mat"
    hdf5_file(path, version, at, 3000)
    assert structural_check(path) == "HDF5 .mat file has the 3000 bytes its superblock states"
    whole = path.read_bytes()
    path.write_bytes(whole + bytes(100))     # longer than stated (padding) is still whole
    assert structural_check(path) == "HDF5 .mat file has the 3000 bytes its superblock states"
    path.write_bytes(whole[:2999])
    with pytest.raises(ValueError, match="HDF5 file of 2999 bytes, its superblock says 3000"):
        structural_check(path)


@pytest.mark.fault("correct", guards="trusted-corrupt")
def test_a_superblock_this_check_cannot_read_is_reported_not_refused(tmp_path):
    path = tmp_path / "labels.mat"
    hdf5_file(path, 0, 512, 3000)
    data = bytearray(path.read_bytes())
    data[512 + 8] = 4                                  # a superblock version after 3
    path.write_bytes(bytes(data))
    assert structural_check(path) == "HDF5 signature (its end not checkable here)"
    for offsets in (4, 16):             # addresses of 4 or 16 bytes, not the 8 read here
        hdf5_file(path, 2, 0, 3000)
        data = bytearray(path.read_bytes())
        data[9] = offsets
        path.write_bytes(bytes(data))
        assert structural_check(path) == "HDF5 signature (its end not checkable here)"


@pytest.mark.fault("clear error", guards="trusted-corrupt")
def test_a_caffemodel_is_whole_when_it_parses_and_holds_weights(tmp_path):
    from caffe.proto import caffe_pb2

    net = caffe_pb2.NetParameter()
    net.layer.add(name="conv").blobs.add().data.extend([1.0, 2.0])
    path = tmp_path / "w.caffemodel"
    path.write_bytes(net.SerializeToString())
    assert structural_check(path) == "caffemodel parses to its end"
    net = caffe_pb2.NetParameter()
    net.layer.add(name="relu")
    path.write_bytes(net.SerializeToString())
    with pytest.raises(ValueError, match="^no layer with weights$"):
        structural_check(path)


@pytest.mark.fault("clear error", guards="trusted-corrupt")
def test_a_digest_that_differs_is_refused_whichever_way_it_sorts(server, tmp_path):
    body = archive_bytes()
    (tmp_path / "f.bin").write_bytes(body)
    server.files["/f.tar.gz"] = body
    dest = tmp_path / "f.tar.gz"
    for wrong in ("0" * 64, "f" * 64):
        with pytest.raises(DownloadError, match="checksum mismatch"):
            verify(tmp_path / "f.bin", sha256=wrong)
        dest.write_bytes(body)                      # in place, recorded as something else
        sidecar(dest).write_text(f"{wrong}  f.tar.gz\n")
        fetch(f"{server.url}/f.tar.gz", dest, progress=False)
        assert (tmp_path / f"f.tar.gz{REJECTED}").exists() and dest.read_bytes() == body
        assert sidecar(dest).read_text().split()[0] == sha256(body)


@pytest.mark.fault("correct", guards="trusted-corrupt")
def test_a_published_size_alone_still_gets_the_structural_check(server, tmp_path):
    body = archive_bytes()
    server.files["/s.tar.gz"] = body
    dest = fetch(f"{server.url}/s.tar.gz", tmp_path / "s.tar.gz", size=len(body),
                 progress=False)
    assert "verified by: tar archive lists completely" in sidecar(dest).read_text()


@pytest.mark.fault("clear error", guards="trusted-corrupt")
def test_a_published_size_that_differs_is_refused_even_when_the_file_reads_whole(
        server, tmp_path):
    body = archive_bytes()
    server.files["/z.tar.gz"] = body
    part = tmp_path / "z.tar.gz.part"
    with pytest.raises(DownloadError, match=rf"{part} from {server.url}/z.tar.gz: expected "
                                            rf"{len(body) + 1} bytes, found {len(body)}"):
        fetch(f"{server.url}/z.tar.gz", tmp_path / "z.tar.gz", size=len(body) + 1,
              progress=False)
    assert not (tmp_path / "z.tar.gz").exists()
    with pytest.raises(DownloadError, match=rf"expected {len(body) - 1} bytes, found "
                                            rf"{len(body)}"):        # and the other way
        fetch(f"{server.url}/z.tar.gz", tmp_path / "z.tar.gz", size=len(body) - 1,
              progress=False)


@pytest.mark.fault("clear error", guards="lost")
def test_a_server_that_ignores_the_range_restarts_the_part_and_a_missing_file_is_an_error(
        server, tmp_path):
    body = np.random.RandomState(6).bytes(20_000)
    server.files["/r.bin"] = body
    server.no_length.add("/r.bin")                  # this server answers a Range with 200
    dest = tmp_path / "r.bin"
    (tmp_path / "r.bin.part").write_bytes(body[:5000])
    fetch(f"{server.url}/r.bin", dest, sha256=sha256(body), progress=False)
    assert dest.read_bytes() == body and server.log[-1][1] == "bytes=5000-"
    (tmp_path / "gone.bin.part").write_bytes(body[:5000])
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch(f"{server.url}/gone.bin", tmp_path / "gone.bin", progress=False)


@pytest.mark.fault("clear error", guards="lost")
@pytest.mark.parametrize("code", [404, 503])
def test_an_http_error_on_a_resumed_part_keeps_the_part_for_the_next_run(server, tmp_path,
                                                                         code):
    """Only 416 (the range starts at the end) says the part may be whole; any other error,
    above or below it, is said as it is and the part stays to be resumed."""
    body = np.random.RandomState(11).bytes(20_000)
    server.files["/e.bin"] = body
    server.status["/e.bin"] = code
    part = tmp_path / "e.bin.part"
    part.write_bytes(body[:5000])
    with pytest.raises(DownloadError, match=f"HTTP {code} "):
        fetch(f"{server.url}/e.bin", tmp_path / "e.bin", sha256=sha256(body), progress=False)
    assert part.read_bytes() == body[:5000] and server.log[-1][1] == "bytes=5000-"
    assert not (tmp_path / f"e.bin.part{REJECTED}").exists()


@pytest.mark.fault("correct", guards="unclear")
def test_the_progress_bar_shows_only_when_asked_and_tqdm_is_optional(server, tmp_path,
                                                                     capsys, monkeypatch):
    body = np.random.RandomState(12).bytes(50_000)
    server.files["/bar.bin"] = body
    fetch(f"{server.url}/bar.bin", tmp_path / "quiet.bin", sha256=sha256(body),
          progress=False)
    assert capsys.readouterr().err == ""
    fetch(f"{server.url}/bar.bin", tmp_path / "shown.bin", sha256=sha256(body))
    shown = capsys.readouterr().err
    assert "shown.bin" in shown and "50.0k" in shown          # tqdm's bar, named, in kB
    monkeypatch.setitem(sys.modules, "tqdm", None)            # an interpreter without tqdm
    dest = fetch(f"{server.url}/bar.bin", tmp_path / "bare.bin", sha256=sha256(body))
    assert dest.read_bytes() == body and capsys.readouterr().err == ""


@pytest.mark.fault("clear error", guards="trusted-corrupt")
@pytest.mark.parametrize("compression", ["gz", "bz2", "xz"])
def test_a_compressed_tar_whose_stream_check_fails_is_refused_though_it_lists(
        tmp_path, compression):
    """Listing a tar stops at its end-of-archive blocks, before the compressed stream's
    own check: a gzip trailer (CRC-32, length) or the last bytes of a bzip2 or xz stream
    that do not match must still refuse the file."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=f"w:{compression}") as tar:
        data = np.random.RandomState(3).bytes(20_000)
        info = tarfile.TarInfo("sift/a.png")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    body = bytearray(out.getvalue())
    whole = tmp_path / f"whole.tar.{compression}"
    whole.write_bytes(bytes(body))
    assert structural_check(whole).endswith("(1 members) and its stream checks")
    body[-5 if compression == "gz" else -9] ^= 0xFF  # gzip's length; bz2's CRC; xz's footer
    broken = tmp_path / f"broken.tar.{compression}"
    broken.write_bytes(bytes(body))
    with tarfile.open(broken) as tar:  # it lists whole: the listing alone would keep it
        assert [m.name for m in tar] == ["sift/a.png"]
    with pytest.raises(ValueError, match=rf"^not a whole \.{compression} "):
        structural_check(broken)


@pytest.mark.fault("clear error", guards="unclear")
def test_what_a_structural_check_says_names_the_count_and_the_kind(tmp_path):
    whole = tmp_path / "a.tar.gz"
    whole.write_bytes(archive_bytes())
    assert structural_check(whole) == ("tar archive lists completely (4 members) and its "
                                       "stream checks")
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(archive_bytes()[:60_000])
    with pytest.raises(ValueError, match=r"^not a whole \.gz \("):
        structural_check(cut)
    mat = tmp_path / "noise.mat"
    mat.write_bytes(np.random.RandomState(13).bytes(300))    # scipy's own error, named
    with pytest.raises(ValueError, match=r"^not a whole \.mat file \(ValueError: "):
        structural_check(mat)


@pytest.mark.fault("correct", guards="unclear")
def test_download_help_says_what_it_does(capsys):
    with pytest.raises(SystemExit) as done:
        download_main(["--help"])
    assert done.value.code == 0
    assert "Resumable, verified HTTP downloads for datasets and pretrained weights." in (
        capsys.readouterr().out)


@pytest.mark.fault("correct", guards="lost")
def test_a_part_already_whole_is_verified_without_a_second_transfer(server, tmp_path):
    """A run stopped after the last byte and before the rename: the server answers the
    Range with 416, and the part is checked as it is."""
    body = np.random.RandomState(14).bytes(20_000)
    server.files["/w.bin"] = body
    (tmp_path / "w.bin.part").write_bytes(body)
    dest = fetch(f"{server.url}/w.bin", tmp_path / "w.bin", sha256=sha256(body),
                 progress=False)
    assert dest.read_bytes() == body and server.log == [("/w.bin", "bytes=20000-")]


@pytest.mark.fault("clear error", guards="trusted-corrupt")
def test_a_zip_is_whole_when_every_member_passes_its_crc(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("labels/a.png", b"a" * 5000)
    path = tmp_path / "labels.zip"
    path.write_bytes(buffer.getvalue())
    assert structural_check(path) == "zip archive reads completely (every member's CRC)"
    damaged = bytearray(buffer.getvalue())
    damaged[100] ^= 0xFF                                 # inside the stored member
    path.write_bytes(bytes(damaged))
    with pytest.raises(ValueError, match="member labels/a.png fails its CRC"):
        structural_check(path)


@pytest.mark.fault("clear error", guards="unclear")
@pytest.mark.parametrize("name,damage", [
    ("junk.tar", lambda whole: b"no tar archive at all" * 50),             # tarfile's error
    ("junk.zip", lambda whole: b"no zip archive at all" * 50),             # zipfile's
    ("cut.tar.gz", lambda whole: whole[:60_000]),                         # EOFError
    ("bad.tar.gz", lambda whole: whole[:20_000] + bytes(len(whole) - 20_000)),  # zlib's
    ("folder.tar", None),                                                 # an OSError
])
def test_each_kind_of_broken_archive_is_named_as_not_whole(tmp_path, name, damage):
    path = tmp_path / name
    if damage is None:
        path.mkdir()
    else:
        path.write_bytes(damage(archive_bytes()))
    with pytest.raises(ValueError, match=rf"^not a whole \{Path(name).suffix} \("):
        structural_check(path)


@pytest.mark.fault("correct", guards="trusted-corrupt")
def test_what_verified_a_file_is_recorded_beside_it(server, tmp_path):
    body = b"0123456789" * 1000
    server.files["/c.bin"] = body
    server.no_length.add("/c.bin")
    fetch(f"{server.url}/c.bin", tmp_path / "named.bin", check=lambda path: "my own check",
          progress=False)
    assert "verified by: my own check" in sidecar(tmp_path / "named.bin").read_text()
    fetch(f"{server.url}/c.bin", tmp_path / "plain.bin", check=lambda path: None,
          progress=False)
    assert "verified by: the caller's check" in sidecar(tmp_path / "plain.bin").read_text()
    fetch(f"{server.url}/c.bin", tmp_path / "sized.bin", size=len(body), progress=False)
    assert "verified by: published size" in sidecar(tmp_path / "sized.bin").read_text()


@pytest.mark.fault("correct", guards="trusted-corrupt")
def test_an_empty_record_is_not_trusted_the_file_is_checked_again(tmp_path):
    """A run stopped while writing <file>.sha256 leaves it empty."""
    dest = tmp_path / "nyud.tar.gz"
    dest.write_bytes(archive_bytes())
    sidecar(dest).write_text("")
    fetch("http://127.0.0.1:9/nyud.tar.gz", dest, progress=False)   # no network needed
    assert sidecar(dest).read_text().split()[0] == sha256(dest.read_bytes())


@pytest.mark.fault("correct", guards="trusted-corrupt")
def test_a_broken_file_placed_by_hand_is_moved_aside_and_fetched(server, tmp_path):
    body = archive_bytes()
    server.files["/p.tar.gz"] = body
    dest = tmp_path / "deep" / "er" / "p.tar.gz"
    fetch(f"{server.url}/p.tar.gz", dest, progress=False)     # its folders made
    sidecar(dest).unlink()
    dest.write_bytes(body[:60_000])                            # no record: placed by hand
    fetch(f"{server.url}/p.tar.gz", dest, progress=False)
    assert dest.read_bytes() == body
    assert (dest.parent / f"p.tar.gz{REJECTED}").read_bytes() == body[:60_000]


@pytest.mark.fault("clear error", guards="unclear")
def test_the_download_command_fetches_or_says_why_in_one_line(server, tmp_path, capsys):
    body = b"x" * 3000
    server.files["/m.bin"] = body
    assert download_main([f"{server.url}/m.bin", str(tmp_path / "m.bin"),
                          "--sha256", sha256(body)]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "m.bin")
    assert download_main([f"{server.url}/gone.bin", str(tmp_path / "g.bin")]) == 1
    assert capsys.readouterr().err.startswith(f"download: error: {server.url}/gone.bin: "
                                              f"HTTP 404 ")
    run = subprocess.run([sys.executable, "-m", "core.download", "--help"],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0 and "Resumable, verified HTTP downloads" in run.stdout


@pytest.mark.fault("correct", guards="unclear")
def test_the_documented_defaults_are_fetchs():
    """docs/faults.md states the bounds every download has unless told otherwise."""
    defaults = {name: p.default for name, p in inspect.signature(fetch).parameters.items()}
    said = "`fetch(timeout={timeout:g}, retries={retries}, budget={budget:g})`".format(
        **defaults)
    assert said in (Path(__file__).parents[1] / "docs" / "faults.md").read_text()
    assert defaults["progress"] is True
