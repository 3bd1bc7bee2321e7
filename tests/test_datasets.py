"""Tests for textrnn.data (registry, fetching), textrnn.text.utf8 and textrnn.charlm.data."""

import gzip
import hashlib
import http.server
import json
import os
import pathlib
import re
import socket
import threading
import time
import zipfile

import pytest

from textrnn.charlm.data import load_char_corpus, split_text
from textrnn.data import fetching
from textrnn.data.fetching import ChecksumError, DatasetUnavailableError, fetch
from textrnn.data.registry import DATASETS, DataFile, DatasetSpec, RemoteFile
from textrnn.text.utf8 import CorpusFileError, read_text_file

SAMPLE = pathlib.Path(__file__).resolve().parents[1] / "data" / "samples" / "tiny_corpus.txt"
MIRROR = os.environ.get(fetching.ENV_VAR)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _closed_port_url(path="a.txt") -> str:
    """A URL on localhost where nothing listens: connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/{path}"


def _fake_spec(url: str, content: bytes = b"hello textrnn\n", name="fake") -> DatasetSpec:
    return DatasetSpec(
        name=name,
        description="test dataset",
        license="test",
        downloads=(RemoteFile(url, _sha(content)),),
        files=(DataFile("sub/a.txt", _sha(content), len(content), source=url),),
        splits={"all": "sub/a.txt"},
        expected_counts={"all": 1},
        count_unit="files",
    )


@pytest.fixture
def no_env_mirror(monkeypatch):
    monkeypatch.delenv(fetching.ENV_VAR, raising=False)
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


# -- registry ---------------------------------------------------------------


def test_registry_has_the_five_datasets_with_checksums():
    assert set(DATASETS) == {"tinyshakespeare", "sst2", "imdb", "multi30k", "spa-eng"}
    for name, spec in DATASETS.items():
        assert spec.name == name
        assert spec.urls and all(u.startswith("https://") for u in spec.urls)
        paths = [f.path for f in spec.files]
        assert len(paths) == len(set(paths)), name
        for f in spec.files:
            assert re.fullmatch(r"[0-9a-f]{64}", f.sha256), (name, f.path)
            assert f.size > 0
            assert f.source is None or f.source in spec.urls
        assert any(f.required for f in spec.files)
        assert set(spec.expected_counts) <= set(spec.splits)


def test_registry_canonical_sources():
    shakespeare = DATASETS["tinyshakespeare"]
    assert shakespeare.urls == (
        "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
    )
    assert dict(shakespeare.expected_counts) == {"train": 1003854, "validation": 111540}
    assert shakespeare.file("input.txt").sha256.startswith("86c4e6aa")
    imdb = DATASETS["imdb"].download(DATASETS["imdb"].urls[0])
    assert imdb.filename == "aclImdb_v1.tar.gz" and imdb.sha256.startswith("c40f74a1")
    assert DATASETS["sst2"].urls[0].endswith("/SST-2.zip")
    assert DATASETS["spa-eng"].urls == (
        "https://storage.googleapis.com/download.tensorflow.org/data/spa-eng.zip",
    )
    multi30k_required = [f.path for f in DATASETS["multi30k"].files if f.required]
    assert multi30k_required == [
        f"raw/{s}.{lang}.gz" for s in ("train", "val", "test_2016_flickr") for lang in ("de", "en")
    ]
    assert all("github" in u and "/data/task1/" in u for u in DATASETS["multi30k"].urls)


def test_unknown_dataset_lists_known_names():
    with pytest.raises(ValueError, match="Unknown dataset 'shakespeare'.*tinyshakespeare"):
        fetch("shakespeare")
    with pytest.raises(ValueError, match="no file 'nope.txt'"):
        fetch("tinyshakespeare", files=["nope.txt"])


# -- mirrors and checksums --------------------------------------------------


def test_mirror_with_good_file_is_verified_and_returned(tmp_path, monkeypatch, no_env_mirror):
    content = b"some text\n"
    monkeypatch.setitem(DATASETS, "fake", _fake_spec(_closed_port_url(), content))
    (tmp_path / "fake" / "sub").mkdir(parents=True)
    (tmp_path / "fake" / "sub" / "a.txt").write_bytes(content)
    assert fetch("fake", tmp_path) == tmp_path / "fake"
    monkeypatch.setenv(fetching.ENV_VAR, str(tmp_path))
    assert fetch("fake") == tmp_path / "fake"


def test_corrupt_file_names_file_and_both_hashes(tmp_path, monkeypatch, no_env_mirror):
    content = b"some text\n"
    monkeypatch.setitem(DATASETS, "fake", _fake_spec(_closed_port_url(), content))
    bad = tmp_path / "fake" / "sub" / "a.txt"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"some text, corrupted\n")
    with pytest.raises(ChecksumError) as info:
        fetch("fake", tmp_path)
    message = str(info.value)
    assert str(bad) in message
    assert _sha(content) in message and _sha(b"some text, corrupted\n") in message


def test_mirror_missing_file_is_a_clear_error(tmp_path, monkeypatch, no_env_mirror):
    url = _closed_port_url()
    monkeypatch.setitem(DATASETS, "fake", _fake_spec(url))
    (tmp_path / "fake").mkdir()
    with pytest.raises(DatasetUnavailableError, match="lacks .*a.txt") as info:
        fetch("fake", tmp_path)
    assert url in str(info.value)


# -- downloads --------------------------------------------------------------


def test_offline_download_fails_fast_with_instructions(tmp_path, monkeypatch, no_env_mirror):
    url = _closed_port_url()
    monkeypatch.setitem(DATASETS, "fake", _fake_spec(url))
    # A mirror root without a fake/ folder is skipped in favour of the cache.
    monkeypatch.setenv(fetching.ENV_VAR, str(tmp_path / "mirror"))
    start = time.monotonic()
    with pytest.raises(DatasetUnavailableError) as info:
        fetch("fake", cache_dir=tmp_path / "cache")
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert "'fake'" in message and url in message
    assert str(tmp_path / "cache" / "textrnn" / "fake" / "sub" / "a.txt") in message
    assert str(tmp_path / "mirror" / "fake" / "sub" / "a.txt") in message
    assert isinstance(info.value, RuntimeError)


def test_unanswered_connection_times_out(tmp_path, monkeypatch, no_env_mirror):
    release = threading.Event()

    def hang(*args, **kwargs):  # a host that never answers (or a DNS lookup that hangs)
        release.wait(10)
        raise OSError("released by the test")

    monkeypatch.setattr(fetching.socket, "create_connection", hang)
    start = time.monotonic()
    with pytest.raises(DatasetUnavailableError, match="no answer .* within 0.5 s") as info:
        fetch("tinyshakespeare", cache_dir=tmp_path, timeout=0.5)
    assert time.monotonic() - start < 5
    release.set()
    assert DATASETS["tinyshakespeare"].urls[0] in str(info.value)
    assert "TEXTRNN_DATA_DIR" in str(info.value)


class _Server:
    """A local HTTP server over a folder, counting requests."""

    def __init__(self, folder: pathlib.Path):
        outer = self
        self.requests = 0

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(folder), **kwargs)

            def do_GET(self):
                outer.requests += 1
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    s = _Server(served)
    yield s, served
    s.close()


def test_download_to_cache_then_reuse(tmp_path, monkeypatch, no_env_mirror, server):
    srv, served = server
    content = "Grüße aus dem Cache\n".encode()
    (served / "a.txt").write_bytes(content)
    archive_member = "¿Qué tal?\n".encode()
    with zipfile.ZipFile(served / "pack.zip", "w") as z:
        z.writestr("pack/inner.txt", archive_member)
    spec = DatasetSpec(
        name="fake",
        description="",
        license="",
        downloads=(
            RemoteFile(f"{srv.url}/a.txt", _sha(content)),
            RemoteFile(f"{srv.url}/pack.zip", None, archive=True),
        ),
        files=(
            DataFile("sub/a.txt", _sha(content), len(content), source=f"{srv.url}/a.txt"),
            DataFile(
                "inner.txt",
                _sha(archive_member),
                len(archive_member),
                source=f"{srv.url}/pack.zip",
                member="pack/inner.txt",
            ),
        ),
        splits={},
        expected_counts={},
        count_unit="files",
    )
    monkeypatch.setitem(DATASETS, "fake", spec)
    folder = fetch("fake", cache_dir=tmp_path / "cache")
    assert folder == tmp_path / "cache" / "textrnn" / "fake"
    assert (folder / "sub" / "a.txt").read_bytes() == content
    assert (folder / "inner.txt").read_bytes() == archive_member
    assert not (folder / "pack_extracted").exists()  # unpacked members are moved into place
    requests = srv.requests
    assert fetch("fake", cache_dir=tmp_path / "cache") == folder
    assert srv.requests == requests  # served from the cache


def test_download_with_wrong_checksum_is_rejected(tmp_path, monkeypatch, no_env_mirror, server):
    srv, served = server
    (served / "a.txt").write_bytes(b"not what the registry expects\n")
    monkeypatch.setitem(DATASETS, "fake", _fake_spec(f"{srv.url}/a.txt"))
    with pytest.raises(DatasetUnavailableError, match="hash does not match"):
        fetch("fake", cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache" / "textrnn" / "fake" / "sub" / "a.txt").exists()


def test_archive_member_with_wrong_checksum_is_rejected(
    tmp_path, monkeypatch, no_env_mirror, server
):
    srv, served = server
    with zipfile.ZipFile(served / "pack.zip", "w") as z:
        z.writestr("pack/inner.txt", b"tampered\n")
    url = f"{srv.url}/pack.zip"
    expected = b"original\n"
    spec = DatasetSpec(
        name="fake",
        description="",
        license="",
        downloads=(RemoteFile(url, None, archive=True),),
        files=(DataFile("inner.txt", _sha(expected), 9, source=url, member="pack/inner.txt"),),
        splits={},
        expected_counts={},
        count_unit="files",
    )
    monkeypatch.setitem(DATASETS, "fake", spec)
    with pytest.raises(ChecksumError, match="inner.txt"):
        fetch("fake", cache_dir=tmp_path / "cache")
    folder = tmp_path / "cache" / "textrnn" / "fake"
    assert not (folder / "inner.txt").exists() and not (folder / "pack.zip").exists()


def test_imdb_builder_writes_mirror_format(tmp_path):
    split = tmp_path / "aclImdb" / "train"
    reviews = {
        "neg/10_2.txt": "Zu lang. Viel zu lang.",
        "neg/2_4.txt": "Not great,<br />not terrible.",
        "pos/0_9.txt": "¡Qué película tan bonita!",
    }
    for rel, text in reviews.items():
        (split / rel).parent.mkdir(parents=True, exist_ok=True)
        (split / rel).write_text(text, encoding="utf-8")
    out = tmp_path / "imdb_train.jsonl.gz"
    fetching._build_imdb_jsonl(split, out)
    assert out.read_bytes()[4:8] == b"\0\0\0\0"  # gzip mtime 0: reproducible bytes
    with gzip.open(out, "rt", encoding="utf-8") as f:
        raw = f.read()
    records = [json.loads(line) for line in raw.splitlines()]
    assert [r["id"] for r in records] == ["train/neg/2_4", "train/neg/10_2", "train/pos/0_9"]
    assert [(r["label"], r["rating"]) for r in records] == [(0, 4), (0, 2), (1, 9)]
    assert records[2]["text"] == "¡Qué película tan bonita!"
    assert list(records[0]) == ["id", "label", "rating", "text"]
    assert "¡" in raw  # not \u-escaped


# -- text files -------------------------------------------------------------


def test_read_text_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        read_text_file(tmp_path / "missing.txt")
    with pytest.raises(CorpusFileError, match="is a directory"):
        read_text_file(tmp_path)
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(CorpusFileError, match="empty.txt is empty"):
        read_text_file(empty)
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes(b"abc\nd" + "é".encode("latin-1") + b"f\n")
    with pytest.raises(CorpusFileError) as info:
        read_text_file(latin1)
    assert "byte offset 5" in str(info.value) and "line 2" in str(info.value)
    assert "0xe9" in str(info.value) and str(latin1) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_read_text_file_keeps_text_and_drops_bom(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbf" + "Straße\r\nniño\n".encode())
    assert read_text_file(path) == "Straße\r\nniño\n"
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xef\xbb\xbfab\xff")
    with pytest.raises(CorpusFileError, match="byte offset 5"):
        read_text_file(bad)


def test_load_char_corpus_from_path_splits_90_10():
    text = SAMPLE.read_text(encoding="utf-8")
    splits = load_char_corpus(SAMPLE)
    k = int(len(text) * 0.9)
    assert splits == {"train": text[:k], "validation": text[k:]}
    assert any(ord(c) > 127 for c in text)


def test_load_char_corpus_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a registered dataset.*tinyshakespeare"):
        load_char_corpus("no-such-corpus")
    with pytest.raises(ValueError, match="not a character corpus"):
        load_char_corpus("sst2")
    short = tmp_path / "short.txt"
    short.write_text("a", encoding="utf-8")
    with pytest.raises(ValueError, match="too short"):
        load_char_corpus(short)
    with pytest.raises(ValueError, match="train_fraction"):
        split_text("abcdef", 1.0)


# -- real corpora (TEXTRNN_DATA_DIR) ----------------------------------------


def _mirror_or_skip(name):
    if not MIRROR:
        pytest.skip(
            f"{fetching.ENV_VAR} is not set; point it at a mirror such as /work/shared/data"
        )
    if not (pathlib.Path(MIRROR) / name).is_dir():
        pytest.skip(f"{fetching.ENV_VAR}={MIRROR} has no {name}/ folder")


@pytest.mark.corpus
def test_tinyshakespeare_split_matches_nanogpt():
    _mirror_or_skip("tinyshakespeare")
    splits = load_char_corpus("tinyshakespeare")
    assert len(splits["train"]) == 1003854
    assert len(splits["validation"]) == 111540
    assert splits["train"].endswith("But who comes here")
    assert splits["validation"].startswith("?\n\nGREMIO:\nGood morrow, neighbour Baptis")
    assert len(set(splits["train"] + splits["validation"])) == 65


@pytest.mark.corpus
@pytest.mark.parametrize("name", sorted(DATASETS))
def test_mirror_files_match_registry(name):
    _mirror_or_skip(name)
    spec = DATASETS[name]
    folder = fetch(name, files=[f.path for f in spec.files])
    assert folder == pathlib.Path(MIRROR) / name
    for f in spec.files:
        assert (folder / f.path).stat().st_size == f.size
