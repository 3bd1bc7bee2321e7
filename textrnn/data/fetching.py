"""Verified fetching of registered datasets: mirror, then cache, then download.

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

import gzip
import hashlib
import json
import os
import pathlib
import shutil
import socket
import threading
import urllib.request
from collections.abc import Iterable

from textrnn.data.registry import DataFile, DatasetSpec, get_spec

ENV_VAR = "TEXTRNN_DATA_DIR"
CONNECT_TIMEOUT_S = 5.0
# A download that stalls (no bytes for this long) fails instead of hanging.
DOWNLOAD_STALL_TIMEOUT_S = 60.0


class DatasetUnavailableError(RuntimeError):
    """A dataset's files are neither in a mirror nor in the cache, and cannot be downloaded."""


class ChecksumError(ValueError):
    """A dataset file exists but its sha256 is not the recorded one."""


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
                origin = f" (built from {f.member}/ by textrnn.data.fetching)"
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
