"""IDX reading, dataset lookup, and the download path against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import shutil
import struct
import threading
from importlib import resources

import numpy as np
import pytest
from conftest import require_data

from tinygrad_lite import datasets


def _idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No TINYGRAD_LITE_DATA and a fresh user cache, so that nothing real is read or written."""
    monkeypatch.delenv(datasets.DATA_ENV, raising=False)
    monkeypatch.delenv(datasets.MNIST_URL_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


@pytest.fixture
def server(tmp_path):
    """(folder, base_url): a local HTTP server serving `folder`."""
    root = tmp_path / "served"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


# ---- read_idx -----------------------------------------------------------------------------------


@pytest.mark.parametrize("code,dtype", [(0x08, np.uint8), (0x0C, np.int32), (0x0D, np.float32)])
def test_read_idx_raw_and_gzipped(tmp_path, code, dtype):
    arr = (np.arange(24).reshape(2, 3, 4) * 3).astype(dtype)
    raw, gz = tmp_path / "a-idx", tmp_path / "a-idx.gz"
    raw.write_bytes(_idx_bytes(arr, code))
    gz.write_bytes(gzip.compress(_idx_bytes(arr, code)))
    for path in (raw, gz):
        out = datasets.read_idx(path)
        assert out.dtype == dtype and out.dtype.isnative and out.shape == (2, 3, 4)
        np.testing.assert_array_equal(out, arr)


def test_read_idx_bad_files_name_the_file(tmp_path):
    arr = np.arange(10, dtype=np.uint8)
    bad_magic = tmp_path / "bad-magic"
    bad_magic.write_bytes(b"\x12\x34" + _idx_bytes(arr)[2:])
    with pytest.raises(ValueError, match="bad-magic: bad IDX magic number 1234"):
        datasets.read_idx(bad_magic)
    truncated = tmp_path / "truncated"
    truncated.write_bytes(_idx_bytes(arr)[:-3])
    with pytest.raises(ValueError, match=r"truncated: IDX dimensions \(10,\) need 10 bytes of data, the file holds 7"):
        datasets.read_idx(truncated)
    not_gzip = tmp_path / "labels.gz"
    not_gzip.write_bytes(_idx_bytes(arr))
    with pytest.raises(ValueError, match="labels.gz: not a gzip file"):
        datasets.read_idx(not_gzip)
    cut_gzip = tmp_path / "cut.gz"
    cut_gzip.write_bytes(gzip.compress(_idx_bytes(arr))[:-6])
    with pytest.raises(ValueError, match="cut.gz: corrupt or truncated gzip"):
        datasets.read_idx(cut_gzip)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty: bad IDX magic number"):
        datasets.read_idx(empty)


# ---- lookup -----------------------------------------------------------------------------------------------


def _write_fake_mnist(folder, n_train=6, n_test=4):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("t10k", n_test)):
        (folder / f"{split}-images-idx3-ubyte.gz").write_bytes(
            gzip.compress(_idx_bytes(rng.integers(0, 256, (n, 28, 28)).astype(np.uint8))))
        (folder / f"{split}-labels-idx1-ubyte").write_bytes(_idx_bytes(rng.integers(0, 10, n).astype(np.uint8)))


def test_load_mnist_finds_root_mnist_or_env_and_converts(isolated, monkeypatch):
    _write_fake_mnist(isolated / "data" / "mnist")
    x, y, xt, yt = datasets.load_mnist(isolated / "data", download=False)
    assert x.shape == (6, 784) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert y.dtype == np.int64 and xt.shape == (4, 784) and yt.shape == (4,)
    monkeypatch.setenv(datasets.DATA_ENV, str(isolated / "data"))
    np.testing.assert_array_equal(datasets.load_mnist(download=False)[1], y)


def test_missing_data_without_download_is_a_clear_error(isolated):
    with pytest.raises(FileNotFoundError, match=r"nowhere/mnist.*download=False"):
        datasets.load_mnist(isolated / "nowhere", download=False)
    with pytest.raises(FileNotFoundError, match="tinyshakespeare"):
        datasets.load_tinyshakespeare(isolated / "nowhere", download=False)


# ---- downloads ------------------------------------------------------------------------------------------------


def test_download_of_real_mnist_from_a_local_server_into_the_cache(isolated, server):
    source = require_data("mnist")
    folder, url = server
    for name in datasets.MNIST_FILES:
        shutil.copy(source / name, folder / name)
    x, y, xt, yt = datasets.load_mnist(base_url=url)  # nothing local: downloads into the user cache
    cached = isolated / "cache" / "tinygrad_lite" / "mnist"
    assert sorted(p.name for p in cached.iterdir()) == sorted(datasets.MNIST_FILES)
    assert x.shape == (60000, 784) and xt.shape == (10000, 784)
    assert np.bincount(yt).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    shutil.rmtree(folder)
    folder.mkdir()
    np.testing.assert_array_equal(datasets.load_mnist(base_url=url)[3], yt)  # the second time from the cache


def test_download_of_tinyshakespeare_from_a_local_server(isolated, server):
    folder, url = server
    packaged = resources.files("tinygrad_lite").joinpath(datasets.SHAKESPEARE_PACKAGED)
    (folder / "input.txt").write_bytes(gzip.decompress(packaged.read_bytes()))  # the real corpus, checksummed
    text = datasets.load_tinyshakespeare(isolated / "data", url=f"{url}/input.txt")
    assert text.startswith("First Citizen:") and len(text) == 1115394
    assert (isolated / "data" / "tinyshakespeare" / "input.txt").is_file()


def test_checksum_mismatch_saves_nothing(isolated, server):
    folder, url = server
    (folder / "file.txt").write_text("tampered")
    with pytest.raises(ValueError, match=r"file.txt has SHA-256 .* expected 0000"):
        datasets.download(f"{url}/file.txt", isolated / "out" / "file.txt", sha256="0" * 64)
    assert list((isolated / "out").iterdir()) == []
    good = hashlib.sha256(b"tampered").hexdigest()
    assert datasets.download(f"{url}/file.txt", isolated / "out" / "file.txt", good).read_text() == "tampered"


def test_gzip_checksums_are_of_the_content(isolated, server):
    folder, url = server
    payload = b"same content, any gzip header"
    (folder / "a.gz").write_bytes(gzip.compress(payload, mtime=123))
    path = datasets.download(f"{url}/a.gz", isolated / "a.gz", hashlib.sha256(payload).hexdigest())
    assert gzip.decompress(path.read_bytes()) == payload


def test_missing_file_and_interrupted_download_save_nothing(isolated, server):
    folder, url = server
    with pytest.raises(OSError, match="could not fetch .*/absent.txt"):
        datasets.download(f"{url}/absent.txt", isolated / "out" / "absent.txt")

    class Interrupted(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"x" * 100)  # then the connection closes

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Interrupted)
    threading.Thread(target=httpd.handle_request, daemon=True).start()
    try:
        with pytest.raises(OSError, match="was interrupted"):
            datasets.download(f"http://127.0.0.1:{httpd.server_address[1]}/f", isolated / "out" / "f")
    finally:
        httpd.server_close()
    assert list((isolated / "out").iterdir()) == []


def test_failed_download_removes_the_folders_and_files_it_created(isolated, server, monkeypatch):
    folder, url = server
    source = isolated / "fake"
    _write_fake_mnist(source)
    images = source / "train-images-idx3-ubyte.gz"
    shutil.copy(images, folder / images.name)  # the first file arrives and checks out; the second is a 404
    checksums = {images.name: hashlib.sha256(gzip.decompress(images.read_bytes())).hexdigest()}
    monkeypatch.setattr(datasets, "MNIST_FILES", datasets.MNIST_FILES | checksums)
    root = isolated / "typo" / "data"
    with pytest.raises(OSError) as caught:
        datasets.load_mnist(root, base_url=url)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("mnist: download: could not fetch")
    assert "train-labels-idx1-ubyte.gz" in message and "TINYGRAD_LITE_DATA" in message
    assert not (isolated / "typo").exists()  # neither the folders nor the one file that did arrive


def test_failed_download_into_an_existing_folder_keeps_the_folder_and_what_was_there(isolated, server):
    _, url = server
    root = isolated / "mine"
    (root / "mnist").mkdir(parents=True)
    (root / "notes.txt").write_text("mine")
    with pytest.raises(OSError, match="could not fetch"):
        datasets.load_mnist(root, base_url=url)
    assert sorted(p.name for p in root.rglob("*")) == ["mnist", "notes.txt"]


# ---- the copy of Tiny Shakespeare in the package --------------------------------------------------------------


def test_tinyshakespeare_ships_with_the_package_and_needs_no_network(isolated, monkeypatch):
    monkeypatch.setenv(datasets.SHAKESPEARE_URL_ENV, "http://127.0.0.1:9/nothing-listens-here")
    text = datasets.load_tinyshakespeare(download=False)
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == datasets.SHAKESPEARE_SHA256
    assert len(text) == 1115394 and len(set(text)) == 65 and text.startswith("First Citizen:")
    assert not (isolated / "cache").exists()  # nothing downloaded, nothing written


def test_the_packaged_copy_is_the_real_corpus():
    real = require_data("tinyshakespeare/input.txt")
    packaged = resources.files("tinygrad_lite").joinpath(datasets.SHAKESPEARE_PACKAGED)
    assert gzip.decompress(packaged.read_bytes()) == real.read_bytes()
    sums = real.parent / "SHA256SUMS"
    if sums.is_file():  # the data folder's own checksum file, where it has one
        assert datasets.SHAKESPEARE_SHA256 in sums.read_text()


def test_a_local_copy_wins_over_the_packaged_one(isolated, monkeypatch):
    (isolated / "data" / "tinyshakespeare").mkdir(parents=True)
    (isolated / "data" / "tinyshakespeare" / "input.txt").write_text("my own corpus", encoding="utf-8")
    monkeypatch.setenv(datasets.DATA_ENV, str(isolated / "data"))
    assert datasets.load_tinyshakespeare() == "my own corpus"
    monkeypatch.setenv(datasets.DATA_ENV, str(isolated / "elsewhere"))  # holds no corpus: the packaged one
    assert datasets.load_tinyshakespeare().startswith("First Citizen:")
