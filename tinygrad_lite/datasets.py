"""Datasets: MNIST (IDX files) and Tiny Shakespeare, found locally or downloaded once and cached.

Where files are looked for, in order: `root` (or the environment variable
`TINYGRAD_LITE_DATA`), in `root/<dataset>/` and then `root/`; then the user
cache `~/.cache/tinygrad_lite/<dataset>/` (`$XDG_CACHE_HOME` respected).
Tiny Shakespeare also ships inside the package (`tinygrad_lite/data/`), so it
needs neither a download nor a data folder. Downloads show a progress bar, are
checked against a SHA-256 and are written to a temporary file that is renamed
only once complete and verified, so an interrupted or corrupt download never
poisons the cache; a failed one removes the files and folders it created.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import math
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zlib
from importlib import resources
from pathlib import Path

import numpy as np
from tqdm import tqdm

DATA_ENV = "TINYGRAD_LITE_DATA"
MNIST_URL_ENV = "TINYGRAD_LITE_MNIST_URL"
SHAKESPEARE_URL_ENV = "TINYGRAD_LITE_TINYSHAKESPEARE_URL"
MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"

# SHA-256 of the decompressed IDX files (the widely published ones), so that any
# mirror's gzip encoding of the same data is accepted.
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
SHAKESPEARE_FILE = "input.txt"
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
SHAKESPEARE_PACKAGED = "data/tinyshakespeare.txt.gz"  # inside the package: gzip -9n of input.txt

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


# ---- IDX ---------------------------------------------------------------------------------------


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it is gzip (by content, or required by a .gz name)."""
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        if path.suffix == ".gz":
            raise ValueError(f"{path}: not a gzip file (the name ends in .gz but the content does not start "
                             f"with the gzip magic bytes)")
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as e:
        raise ValueError(f"{path}: corrupt or truncated gzip data ({e})") from e


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """An IDX file (gzipped or raw) as an ndarray of its dtype and shape, validated against its header."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: bad IDX magic number {data[:4].hex() or '(empty file)'} "
                         f"(expected 00 00 <type code> <ndim>)")
    dtype, ndim = np.dtype(_IDX_DTYPES[data[2]]), data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(data)} bytes for {ndim} dimensions)")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = math.prod(dims) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(f"{path}: IDX dimensions {dims} need {expected} bytes of data, the file holds "
                         f"{len(data) - header} ({'truncated' if len(data) - header < expected else 'trailing bytes'})")
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))


# ---- finding and downloading -----------------------------------------------------------------------


def cache_dir() -> Path:
    """The user cache folder for downloads: $XDG_CACHE_HOME/tinygrad_lite or ~/.cache/tinygrad_lite."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tinygrad_lite"


def _candidate_dirs(dataset: str, root: str | os.PathLike | None) -> list[Path]:
    root = root if root is not None else os.environ.get(DATA_ENV)
    dirs = [Path(root) / dataset, Path(root)] if root else []
    return dirs + [cache_dir() / dataset]


def _find(dataset: str, names: list[str], root: str | os.PathLike | None) -> dict[str, Path] | None:
    """The first candidate folder holding all `names` (each also accepted without .gz)."""
    for d in _candidate_dirs(dataset, root):
        found = {}
        for name in names:
            for option in (d / name, d / name.removesuffix(".gz")):
                if option.is_file():
                    found[name] = option
                    break
        if len(found) == len(names):
            return found
    return None


def download(url: str, dest: str | os.PathLike, sha256: str | None = None) -> Path:
    """Fetch `url` to `dest` with a progress bar; verify the content's SHA-256; rename into place only then."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                response = urllib.request.urlopen(url, timeout=60)
            except (urllib.error.URLError, OSError) as e:
                raise OSError(f"download: could not fetch {url} ({e}); check the network, or fetch it by hand "
                              f"into {dest.parent}") from e
            expected = int(response.headers.get("Content-Length") or 0) or None
            received = 0
            with response, tqdm(total=expected, unit="B", unit_scale=True, unit_divisor=1024, desc=dest.name,
                                leave=False) as bar:
                try:
                    while chunk := response.read(1 << 16):
                        out.write(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
                except (http.client.HTTPException, OSError) as e:
                    raise OSError(f"download: {url} was interrupted ({e!r}); nothing was saved, retry") from e
            if expected is not None and received != expected:
                raise OSError(f"download: {url} was interrupted after {received} of {expected} bytes; "
                              f"nothing was saved, retry")
        if sha256 is not None:
            actual = _content_sha256(tmp, gzipped=dest.suffix == ".gz", url=url)
            if actual != sha256:
                raise ValueError(f"download: {url} has SHA-256 {actual}, expected {sha256}; "
                                 f"the file was not saved (retry, or use another mirror)")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _content_sha256(path: Path, gzipped: bool, url: str) -> str:
    """SHA-256 of the content (decompressed for gzip, so that any mirror's gzip encoding is accepted)."""
    digest = hashlib.sha256()
    try:
        with (gzip.open(path, "rb") if gzipped else open(path, "rb")) as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    except (EOFError, OSError, zlib.error) as e:
        raise ValueError(f"download: {url} is not valid gzip data ({e}); the file was not saved") from e
    return digest.hexdigest()


def _locate(dataset: str, files: dict[str, tuple[str, str]], root: str | os.PathLike | None,
            download_missing: bool) -> dict[str, Path]:
    """Paths of `files` ({name: (url, sha256)}): found locally, else downloaded into the first candidate folder.

    A failed download removes what this call created (files and folders), so nothing half-made is left behind.
    """
    found = _find(dataset, list(files), root)
    if found is not None:
        return found
    target = _candidate_dirs(dataset, root)[0]
    if not download_missing:
        searched = ", ".join(str(d) for d in _candidate_dirs(dataset, root))
        raise FileNotFoundError(f"{dataset}: files {sorted(files)} not found in {searched} and download=False; "
                                f"set {DATA_ENV} or pass root= to the folder that holds them")
    first_created = next((d for d in reversed([target, *target.parents]) if not d.exists()), None)
    fetched = []
    try:
        for name, (url, sha) in files.items():
            if not (target / name).is_file():
                fetched.append(download(url, target / name, sha))
    except (OSError, ValueError) as e:
        for path in fetched:
            path.unlink(missing_ok=True)
        if first_created is not None:
            shutil.rmtree(first_created, ignore_errors=True)
        raise type(e)(f"{dataset}: {e}; or set {DATA_ENV} to a folder that holds {dataset}/") from e
    return {name: target / name for name in files}


# ---- datasets ------------------------------------------------------------------------------------------


def load_mnist(root: str | os.PathLike | None = None, download: bool = True, base_url: str | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train (60000, 784), y_train (60000,), x_test (10000, 784), y_test (10000,)).

    Images are float32 in [0, 1], labels int64. Files come from `root`
    (default: $TINYGRAD_LITE_DATA, then the user cache) or are downloaded from
    `base_url` (default: $TINYGRAD_LITE_MNIST_URL, then a public mirror).
    """
    base_url = (base_url or os.environ.get(MNIST_URL_ENV) or MNIST_URL).rstrip("/")
    paths = _locate("mnist", {name: (f"{base_url}/{name}", sha) for name, sha in MNIST_FILES.items()}, root, download)
    arrays = []
    for split in ("train", "t10k"):
        images = read_idx(paths[f"{split}-images-idx3-ubyte.gz"])
        labels = read_idx(paths[f"{split}-labels-idx1-ubyte.gz"])
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"mnist: {split} images of shape {images.shape} do not match labels of shape "
                             f"{labels.shape} (in {paths[f'{split}-images-idx3-ubyte.gz'].parent})")
        x = images.reshape(len(images), -1).astype(np.float32)
        x /= 255.0
        arrays += [x, labels.astype(np.int64)]
    return tuple(arrays)


def load_tinyshakespeare(root: str | os.PathLike | None = None, download: bool = True, url: str | None = None) -> str:
    """The Tiny Shakespeare corpus (1,115,394 characters, 65 distinct) as one string.

    With `root`, from that folder (downloaded into it from `url` if missing). Without, from
    $TINYGRAD_LITE_DATA or the user cache when they hold it, else from the copy shipped in the package:
    no network and no data set-up needed.
    """
    if root is None and _find("tinyshakespeare", [SHAKESPEARE_FILE], None) is None:
        packaged = resources.files(__package__).joinpath(SHAKESPEARE_PACKAGED)
        if packaged.is_file():
            raw = gzip.decompress(packaged.read_bytes())
            if hashlib.sha256(raw).hexdigest() != SHAKESPEARE_SHA256:
                raise ValueError(f"load_tinyshakespeare: the copy in the package ({packaged}) is damaged "
                                 f"(SHA-256 mismatch); reinstall tinygrad_lite")
            return raw.decode("utf-8")
    url = url or os.environ.get(SHAKESPEARE_URL_ENV) or SHAKESPEARE_URL
    files = {SHAKESPEARE_FILE: (url, SHAKESPEARE_SHA256)}
    path = _locate("tinyshakespeare", files, root, download)[SHAKESPEARE_FILE]
    return path.read_text(encoding="utf-8")


__all__ = ["read_idx", "load_mnist", "load_tinyshakespeare", "download", "cache_dir"]
