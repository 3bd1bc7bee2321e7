"""The character language model's corpora: a registered name or a text file, split by
character position (nanoGPT's shakespeare_char protocol)."""

from __future__ import annotations

import os
import pathlib

from textrnn.data.fetching import fetch
from textrnn.data.registry import DATASETS
from textrnn.text.utf8 import read_text_file

# nanoGPT's shakespeare_char split: first 90% of characters train, the rest validation.
CHAR_TRAIN_FRACTION = 0.9


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
