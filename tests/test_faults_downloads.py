"""Downloads with no known checksum, against a 127.0.0.1 server: a transfer cut with and
without Content-Length is never promoted under the final name; what is accepted has its
sha256 recorded and is re-verified on the next run; a failing file is moved aside."""

import gzip
import hashlib
import io
import tarfile
import time

import numpy as np
import pytest
import scipy.io

from core.download import REJECTED, DownloadError, fetch, sidecar, structural_check
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
    with pytest.raises(DownloadError, match="gave up after 2 tries"):
        fetch(f"{server.url}/x.tar.gz", tmp_path / "x.tar.gz", retries=1, timeout=0.3,
              progress=False)
    assert time.monotonic() - began < 10
    err = capsys.readouterr().err
    assert "x.tar.gz: no answer or no data for 0.3 s at 0 bytes; resuming (try 2 of 2)" in err


@pytest.mark.fault("clear error", guards="silent")
def test_the_whole_download_stops_at_its_time_budget(server, tmp_path):
    body = np.random.RandomState(5).bytes(30_000)
    server.files["/slow.bin"] = body
    server.stall.add("/slow.bin")
    began = time.monotonic()
    with pytest.raises(DownloadError, match=r"the time budget of 1 s ran out"):
        fetch(f"{server.url}/slow.bin", tmp_path / "slow.bin", sha256=sha256(body),
              retries=100, timeout=0.4, budget=1.0, progress=False)
    assert time.monotonic() - began < 5
