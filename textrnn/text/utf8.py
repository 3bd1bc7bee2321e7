"""Strict UTF-8: text files and byte strings decoded with errors that say where.

Example:
    >>> ensure_text(b"caf\xc3\xa9")
    'café'
"""

from __future__ import annotations

import gzip
import os
import pathlib


class CorpusFileError(ValueError):
    """A text corpus file exists but cannot be used (a directory, empty, or not UTF-8)."""


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


def ensure_text(text) -> str:
    """Returns `text` as `str`, decoding UTF-8 bytes with a clear error.

    Raises:
        ValueError: for bytes that are not valid UTF-8 (names the byte offset).
        TypeError: for anything that is neither `str` nor bytes.
    """
    if isinstance(text, str):
        return text
    if isinstance(text, (bytes, bytearray)):
        try:
            return bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(
                f"Input is not valid UTF-8: byte {bytes(text)[e.start : e.start + 1]!r} at offset "
                f"{e.start} ({e.reason})."
            ) from None
    raise TypeError(f"Expected text as str or UTF-8 bytes. Received: {type(text).__name__}")
