"""Labelled sentiment corpora: strict readers and the project's split definitions.

`load_sentiment_splits` returns `{"train", "validation", "test"}` -> `LabeledTexts`:

- `"sst2"`: train = `glue/train.tsv` (67,349 phrases and sentences), validation =
  `glue/dev.tsv` (872), test = `test_labeled.tsv` (1,821; GLUE test order, labels joined
  from `stsa.binary.test`, a file only the shared mirror holds). See `data/sst2.md`.
- `"imdb"`: test = `imdb_test.jsonl.gz` (25,000). There is no official validation set,
  so it is carved from `imdb_train.jsonl.gz` (25,000): `np.random.default_rng(seed)
  .permutation(n)`, the first `round(validation_fraction * n)` indices (sorted) are
  validation, the rest (sorted, file order) train; 22,500 / 2,500 at the defaults
  (`validation_fraction=0.1`, `seed=0`). With `validation_split="movie_blocks"` whole
  blocks of consecutive review ids (IMDB numbers reviews movie by movie) go to
  validation instead, so that validation, like test, holds movies train has not seen.
  See `data/imdb.md`.
- a directory: `train.tsv`, `validation.tsv` or `dev.tsv`, and optionally `test.tsv`,
  each with a `sentence<TAB>label` header, used as they are.

The readers never drop a row silently: a malformed row, an unexpected label, an empty
text or bytes that are not UTF-8 raise `LabeledDataError` naming the file and the
1-based line.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re

import numpy as np

from textrnn.data.fetching import fetch
from textrnn.data.registry import DATASETS
from textrnn.text.utf8 import read_text_file

SENTIMENT_DATASETS = ("sst2", "imdb")
SST2_FILES = {"train": "glue/train.tsv", "validation": "glue/dev.tsv", "test": "test_labeled.tsv"}
IMDB_FILES = {"train": "imdb_train.jsonl.gz", "test": "imdb_test.jsonl.gz"}
VALIDATION_SPLITS = ("random", "movie_blocks")
MOVIE_BLOCK_SIZE = 125
_IMDB_ID = re.compile(r"^(?P<folder>.+)/(?P<number>\d+)_\d+$")


class LabeledDataError(ValueError):
    """A labelled file cannot be used: bad bytes, a malformed row, a bad label, an empty text.

    The message names the file and the 1-based line number.
    """


@dataclasses.dataclass(frozen=True, eq=False)
class LabeledTexts:
    """Texts with one integer class label each.

    Args:
        texts: the texts, in file order.
        labels: int32 array of shape `[len(texts)]`; stored as a read-only copy.
        ids: optional identifier per text (IMDB: the original file path such as
            `"train/neg/0_3"`), kept through `take`.

    Raises:
        ValueError: if `labels` (or `ids`, when given) is not one per text.
    """

    texts: tuple[str, ...]
    labels: np.ndarray
    ids: tuple[str, ...] | None = None

    def __post_init__(self):
        labels = np.array(self.labels, dtype=np.int32)
        if labels.shape != (len(self.texts),):
            raise ValueError(
                f"Expected one label per text: {len(self.texts)} texts. "
                f"Received: labels of shape {labels.shape}"
            )
        if self.ids is not None and len(self.ids) != len(self.texts):
            raise ValueError(
                f"Expected one id per text: {len(self.texts)} texts. Received: {len(self.ids)} ids"
            )
        labels.flags.writeable = False
        object.__setattr__(self, "texts", tuple(self.texts))
        object.__setattr__(self, "labels", labels)
        if self.ids is not None:
            object.__setattr__(self, "ids", tuple(self.ids))

    def __len__(self) -> int:
        return len(self.texts)

    def take(self, indices) -> LabeledTexts:
        """Returns the examples at `indices` (a sequence of ints), in that order."""
        indices = np.asarray(indices, dtype=np.int64)
        ids = None if self.ids is None else tuple(self.ids[i] for i in indices)
        return LabeledTexts(tuple(self.texts[i] for i in indices), self.labels[indices], ids)


def _read_lines(path: pathlib.Path) -> list[str]:
    """Decodes a plain or `.gz` UTF-8 file into lines, without trailing blank lines."""
    if not path.exists():
        raise FileNotFoundError(f"Labelled data file not found: {path}")
    text = read_text_file(path, allow_empty=True, error=LabeledDataError)
    lines = text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def _check_num_classes(num_classes: int) -> None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"Expected an integer `num_classes` >= 2. Received: {num_classes!r}")


def read_labeled_tsv(
    path: str | os.PathLike,
    *,
    text_column: str = "sentence",
    label_column: str = "label",
    num_classes: int = 2,
) -> LabeledTexts:
    """Reads a tab-separated file with a header row, one labelled text per row.

    Columns are found by name in the header, so GLUE's `sentence<TAB>label` and the
    mirror's `index<TAB>sentence<TAB>label` both work. Texts are stripped of surrounding
    whitespace (GLUE rows end in `" <TAB>"`). `\\r\\n` line endings and blank lines at the
    end of the file are accepted; nothing else is skipped.

    Args:
        path: a UTF-8 `.tsv` file (a leading byte-order mark is ignored).
        text_column: header name of the text column.
        label_column: header name of the label column.
        num_classes: labels must be integers in `[0, num_classes)`.

    Returns:
        A `LabeledTexts` in file order.

    Raises:
        FileNotFoundError: if `path` does not exist.
        LabeledDataError: (a `ValueError`) for bytes that are not UTF-8 (line and byte
            offset given), a header lacking either column (the header found is shown), a
            row with the wrong number of fields, a label that is not an integer in range,
            an empty text, or a header with no rows. The message names file and line.
        ValueError: if `num_classes` is not an integer >= 2.

    Example:

    >>> data = read_labeled_tsv("data/samples/tiny_sentiment/dev.tsv")  # doctest: +SKIP
    >>> len(data), data.labels.dtype  # doctest: +SKIP
    (16, dtype('int32'))
    """
    _check_num_classes(num_classes)
    path = pathlib.Path(path)
    lines = _read_lines(path)
    if not lines:
        raise LabeledDataError(f"{path} is empty: expected a header row naming the columns.")
    header = [name.strip() for name in lines[0].split("\t")]
    if text_column not in header or label_column not in header:
        raise LabeledDataError(
            f"{path}:line 1: the header must name the columns {text_column!r} and "
            f"{label_column!r}; found {header}."
        )
    width, ti, li = len(header), header.index(text_column), header.index(label_column)
    texts, labels = [], []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != width:
            blank = " (a blank line)" if not line.strip() else ""
            raise LabeledDataError(
                f"{path}:line {number}: expected {width} tab-separated fields, "
                f"found {len(fields)}{blank}."
            )
        text = fields[ti].strip()
        if not text:
            raise LabeledDataError(f"{path}:line {number}: empty text in column {text_column!r}.")
        texts.append(text)
        raw = fields[li].strip()
        value = int(raw) if raw.isascii() and raw.isdigit() else -1
        labels.append(_check_label(value, raw, num_classes, path, number))
    if not texts:
        raise LabeledDataError(f"{path} has a header but no rows.")
    return LabeledTexts(tuple(texts), np.array(labels, dtype=np.int32))


def _check_label(value: int, raw, num_classes: int, path: pathlib.Path, number: int) -> int:
    """Returns `value` if it is in `[0, num_classes)`; else an error quoting `raw`."""
    if not 0 <= value < num_classes:
        raise LabeledDataError(
            f"{path}:line {number}: label {raw!r} is not an integer in [0, {num_classes})."
        )
    return value


def read_imdb_jsonl(path: str | os.PathLike, *, num_classes: int = 2) -> LabeledTexts:
    """Reads the mirror's IMDB JSON Lines (plain or `.gz`): one review object per line.

    Each line is `{"id": ..., "label": 0|1, "rating": ..., "text": ...}`; `"text"` (kept
    verbatim, `<br />` tags included), `"label"` and, when every line has one, `"id"`
    are used.

    Args:
        path: `imdb_train.jsonl.gz`, `imdb_test.jsonl.gz` or a file in that format.
        num_classes: labels must be integers in `[0, num_classes)`.

    Returns:
        A `LabeledTexts` in file order (the mirror's files list all negatives first), with
        `ids` when every line has a string `"id"` (else `ids` is None).

    Raises:
        FileNotFoundError: if `path` does not exist.
        LabeledDataError: for bad bytes or gzip data, a line that is not a JSON object,
            a missing `"text"` or `"label"`, a label out of range, or an empty text;
            the message names file and line.

    Example:

    >>> test = read_imdb_jsonl("/work/shared/data/imdb/imdb_test.jsonl.gz")  # doctest: +SKIP
    >>> len(test), int(test.labels.sum())  # doctest: +SKIP
    (25000, 12500)
    """
    _check_num_classes(num_classes)
    path = pathlib.Path(path)
    texts, labels, ids = [], [], []
    for number, line in enumerate(_read_lines(path), start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise LabeledDataError(f"{path}:line {number}: not valid JSON ({e.msg}).") from None
        if not isinstance(record, dict) or "text" not in record or "label" not in record:
            raise LabeledDataError(
                f"{path}:line {number}: expected a JSON object with keys 'text' and 'label'."
            )
        text = record["text"]
        if not isinstance(text, str) or not text.strip():
            raise LabeledDataError(f"{path}:line {number}: empty or non-string 'text'.")
        texts.append(text)
        ids.append(record.get("id"))
        raw = record["label"]
        value = raw if type(raw) is int else -1  # a JSON string or float is not a label
        labels.append(_check_label(value, raw, num_classes, path, number))
    if not texts:
        raise LabeledDataError(f"{path} holds no reviews.")
    all_ids = all(isinstance(i, str) for i in ids)
    return LabeledTexts(tuple(texts), np.array(labels, dtype=np.int32), ids if all_ids else None)


def split_validation(
    data: LabeledTexts, validation_fraction: float, seed: int
) -> tuple[LabeledTexts, LabeledTexts]:
    """Carves a seeded validation set out of `data`; returns `(train, validation)`.

    `np.random.default_rng(seed).permutation(n)`: the first `round(validation_fraction *
    n)` indices, sorted, are validation; the rest, sorted, train. Both keep file order.

    Raises:
        ValueError: if `validation_fraction` is not in (0, 1) or a part would be empty.
    """
    _check_fraction(validation_fraction)
    n = len(data)
    k = round(validation_fraction * n)
    if k == 0 or k == n:
        raise ValueError(
            f"validation_fraction={validation_fraction} of {n} examples leaves an empty split."
        )
    order = np.random.default_rng(seed).permutation(n)
    return data.take(np.sort(order[k:])), data.take(np.sort(order[:k]))


def split_validation_by_movie_blocks(
    data: LabeledTexts, validation_fraction: float, seed: int, block_size: int = MOVIE_BLOCK_SIZE
) -> tuple[LabeledTexts, LabeledTexts]:
    """Carves validation out of IMDB train as whole blocks of consecutive file ids.

    IMDB numbers the reviews of each label folder (`train/neg`, `train/pos`) movie by
    movie: reviews with consecutive ids are mostly about the same film (see
    `data/imdb.md`). A random split therefore puts reviews of one movie on both sides, and
    validation accuracy rewards memorised names of actors and films that the test
    reviews (other movies) do not share. Whole blocks keep almost every movie on one side.

    Within each folder the reviews, sorted by numeric id, are cut into blocks of
    `block_size`; `np.random.default_rng(seed)` chooses `round(validation_fraction *
    blocks)` blocks of each folder (folders in sorted order) for validation, so both
    labels keep their share. Both parts keep file order.

    Args:
        data: reviews with IMDB ids (`"<split>/<folder>/<number>_<rating>"`), as
            `read_imdb_jsonl` returns them.
        validation_fraction: share of blocks, per folder, that goes to validation.
        seed: seed of the block choice.
        block_size: reviews per block.

    Returns:
        `(train, validation)`.

    Raises:
        ValueError: if `data` has no ids or an id is not in IMDB's form, if
            `validation_fraction` is not in (0, 1), or if a folder would give no block
            (or every block) to validation.

    Example:

    >>> full = read_imdb_jsonl("/work/shared/data/imdb/imdb_train.jsonl.gz")  # doctest: +SKIP
    >>> train, validation = split_validation_by_movie_blocks(full, 0.1, seed=0)  # doctest: +SKIP
    >>> len(train), len(validation)  # doctest: +SKIP
    (22500, 2500)
    """
    _check_fraction(validation_fraction)
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"Expected an integer `block_size` >= 1. Received: {block_size!r}")
    if data.ids is None:
        raise ValueError(
            "The movie-block split needs IMDB review ids (`LabeledTexts.ids`), and these "
            "texts have none; use validation_split='random'."
        )
    folders: dict[str, list[tuple[int, int]]] = {}
    for row, review_id in enumerate(data.ids):
        match = _IMDB_ID.match(review_id)
        if match is None:
            raise ValueError(
                f"Expected IMDB ids like 'train/neg/0_3' for the movie-block split. "
                f"Received: {review_id!r} (example {row})"
            )
        folders.setdefault(match["folder"], []).append((int(match["number"]), row))
    rng = np.random.default_rng(seed)
    validation_rows = []
    for folder in sorted(folders):
        rows = [row for _, row in sorted(folders[folder])]
        blocks = [rows[i : i + block_size] for i in range(0, len(rows), block_size)]
        k = round(validation_fraction * len(blocks))
        if k == 0 or k == len(blocks):
            raise ValueError(
                f"validation_fraction={validation_fraction} of the {len(blocks)} blocks of "
                f"{block_size} reviews in {folder!r} leaves an empty split."
            )
        for b in rng.permutation(len(blocks))[:k]:
            validation_rows.extend(blocks[b])
    chosen = np.zeros(len(data), dtype=bool)
    chosen[validation_rows] = True
    return data.take(np.flatnonzero(~chosen)), data.take(np.flatnonzero(chosen))


def _check_fraction(validation_fraction: float) -> None:
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(
            f"Expected 0 < validation_fraction < 1. Received: validation_fraction="
            f"{validation_fraction}"
        )


def load_sentiment_splits(
    name_or_path: str | os.PathLike,
    *,
    data_dir: str | os.PathLike | None = None,
    validation_fraction: float = 0.1,
    seed: int = 0,
    num_classes: int = 2,
    validation_split: str = "random",
) -> dict[str, LabeledTexts]:
    """Loads a sentiment corpus as train / validation / test splits.

    The split definitions are in the module docstring and the dataset cards.

    Args:
        name_or_path: `"sst2"`, `"imdb"`, or a directory holding `train.tsv`,
            `validation.tsv` (or `dev.tsv`) and optionally `test.tsv`.
        data_dir: mirror root for registered names (see `textrnn.data.fetching.fetch`).
        validation_fraction: share of IMDB train carved out as validation.
        seed: seed of the IMDB validation split.
        num_classes: labels must be integers in `[0, num_classes)`.
        validation_split: how IMDB validation is carved: `"random"` (a seeded
            permutation, `split_validation`) or `"movie_blocks"` (whole blocks of
            consecutive review ids, `split_validation_by_movie_blocks`).

    Returns:
        `{"train", "validation", "test"}` -> `LabeledTexts`; a directory without
        `test.tsv` gives no `"test"` key.

    Raises:
        ValueError: for a registered dataset that is not a sentiment corpus, a
            `validation_fraction` outside (0, 1), an unknown `validation_split`, or a
            directory holding both
            `validation.tsv` and `dev.tsv`; `LabeledDataError` for a bad file.
        FileNotFoundError: for a path that does not exist or lacks `train.tsv` or a
            validation file (the message lists the registered names too).
        textrnn.data.fetching.DatasetUnavailableError: when a registered corpus cannot be found.

    Example:

    >>> splits = load_sentiment_splits("imdb")  # doctest: +SKIP
    >>> {k: len(v) for k, v in splits.items()}  # doctest: +SKIP
    {'train': 22500, 'validation': 2500, 'test': 25000}
    """
    _check_fraction(validation_fraction)
    _check_num_classes(num_classes)
    if validation_split not in VALIDATION_SPLITS:
        raise ValueError(
            f"Expected `validation_split` in {VALIDATION_SPLITS}. "
            f"Received: validation_split={validation_split!r}"
        )
    key = os.fspath(name_or_path)
    if key == "sst2":
        folder = fetch("sst2", data_dir, files=list(SST2_FILES.values()))
        return {
            split: read_labeled_tsv(folder / rel, num_classes=num_classes)
            for split, rel in SST2_FILES.items()
        }
    if key == "imdb":
        folder = fetch("imdb", data_dir, files=list(IMDB_FILES.values()))
        full = read_imdb_jsonl(folder / IMDB_FILES["train"], num_classes=num_classes)
        split = (
            split_validation if validation_split == "random" else split_validation_by_movie_blocks
        )
        train, validation = split(full, validation_fraction, seed)
        test = read_imdb_jsonl(folder / IMDB_FILES["test"], num_classes=num_classes)
        return {"train": train, "validation": validation, "test": test}
    if key in DATASETS:
        raise ValueError(
            f"Dataset {key!r} is not a sentiment corpus; sentiment corpora: "
            f"{', '.join(SENTIMENT_DATASETS)}."
        )
    return _load_directory(pathlib.Path(key).expanduser(), key, num_classes)


def _load_directory(folder: pathlib.Path, key: str, num_classes: int) -> dict[str, LabeledTexts]:
    expected = "train.tsv, validation.tsv (or dev.tsv) and optionally test.tsv"
    registered = f"registered datasets: {', '.join(sorted(DATASETS))}"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{key!r} is neither a registered sentiment corpus "
            f"({', '.join(SENTIMENT_DATASETS)}) nor a directory holding {expected} "
            f"({registered})."
        )
    validation = [folder / n for n in ("validation.tsv", "dev.tsv") if (folder / n).is_file()]
    if len(validation) > 1:
        raise ValueError(f"{folder} holds both validation.tsv and dev.tsv; keep one.")
    missing = [n for n in ("train.tsv",) if not (folder / n).is_file()]
    missing += [] if validation else ["validation.tsv (or dev.tsv)"]
    if missing:
        raise FileNotFoundError(
            f"{folder} lacks {' and '.join(missing)}: a sentiment directory holds {expected} "
            f"with a `sentence<TAB>label` header ({registered})."
        )
    files = {"train": folder / "train.tsv", "validation": validation[0]}
    if (folder / "test.tsv").is_file():
        files["test"] = folder / "test.tsv"
    return {split: read_labeled_tsv(p, num_classes=num_classes) for split, p in files.items()}
