"""Parallel corpora: strict line readers and the project's translation split definitions.

`load_translation_splits` returns `{"train", "validation", "test"}` -> `ParallelTexts`:

- `"multi30k"` (de<->en): train = `raw/train.*.gz` (29,000 pairs), validation =
  `raw/val.*.gz` (1,014), test = `raw/test_2016_flickr.*.gz` (1,000). See
  `data/multi30k.md`.
- `"spa-eng"` (en<->es): `spa.txt` has no official split; the project's is
  `SPA_ENG_SPLIT`: pairs that share their English or their Spanish sentence are
  connected, and the connected groups (in order of their first pair) are shuffled with
  `np.random.default_rng(seed)`; the first 10% of them go to test, the next 10% to
  validation and the rest to train; each split keeps file order. No English and no
  Spanish sentence is in two splits, so neither direction's sources nor its references
  leak. See `data/spa-eng.md`.
- a directory: `train.<lang>`, a validation pair (`validation.`, `valid.`, `val.` or
  `dev.<lang>`) and optionally `test.<lang>`, plain or `.gz`, line i of one side
  translating line i of the other.

Nothing is dropped silently: unequal line counts, an empty line and bytes that are not
UTF-8 raise `ParallelDataError` naming the files, counts and line numbers.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import types

import numpy as np

from textrnn.data.fetching import fetch
from textrnn.data.registry import DATASETS
from textrnn.text.utf8 import read_text_file

TRANSLATION_DATASETS = ("multi30k", "spa-eng")
MULTI30K_LANGUAGES = ("de", "en")
MULTI30K_STEMS = {"train": "train", "validation": "val", "test": "test_2016_flickr"}
SPA_ENG_LANGUAGES = ("en", "es")
VALIDATION_STEMS = ("validation", "valid", "val", "dev")

# The recorded spa-eng split (see `split_by_connected_pairs`). spa.txt (sha256 6ec60e21...)
# has 118,964 pairs in 97,780 groups connected by a shared English or Spanish sentence:
# round(0.1 * 97,780) = 9,778 groups go to test, 9,778 to validation, 78,224 to train,
# giving the pair counts in `expected_counts`. (Until 2026-12-01 pairs were grouped by the
# English sentence alone, which left 7.2% of the es->en test sources in training.)
SPA_ENG_SPLIT = types.MappingProxyType(
    {
        "seed": 0,
        "test_fraction": 0.1,
        "validation_fraction": 0.1,
        "group_by": "connected pairs: no English and no Spanish sentence is in two splits",
        "expected_counts": {"train": 95_218, "validation": 11_847, "test": 11_899},
    }
)


class ParallelDataError(ValueError):
    """Parallel text cannot be used: bad bytes, unequal line counts, an empty or bad line.

    The message names the file(s), the counts and the 1-based line number.
    """


@dataclasses.dataclass(frozen=True)
class ParallelTexts:
    """Aligned sentence pairs: `targets[i]` translates `sources[i]`.

    Args:
        sources: source-language sentences.
        targets: target-language sentences, as many as `sources`.

    Raises:
        ValueError: if the two sides differ in length.
    """

    sources: tuple[str, ...]
    targets: tuple[str, ...]

    def __post_init__(self):
        object.__setattr__(self, "sources", tuple(self.sources))
        object.__setattr__(self, "targets", tuple(self.targets))
        if len(self.sources) != len(self.targets):
            raise ValueError(
                f"Expected as many targets as sources. Received: {len(self.sources)} "
                f"sources and {len(self.targets)} targets"
            )

    def __len__(self) -> int:
        return len(self.sources)

    def swapped(self) -> ParallelTexts:
        """The same pairs in the other direction."""
        return ParallelTexts(self.targets, self.sources)


def read_lines(path: str | os.PathLike) -> list[str]:
    """Reads a UTF-8 text file (plain, or gzip when the name ends in `.gz`) as lines.

    Only the line ending (`\\n` or `\\r\\n`) is removed, and a leading byte-order mark;
    a final newline does not make an extra line. Other whitespace is kept.

    Args:
        path: the file.

    Returns:
        The lines, in order.

    Raises:
        FileNotFoundError: if nothing exists at `path`.
        ParallelDataError: for a directory, broken gzip data, or bytes that are not
            UTF-8 (the message gives the line and byte offset of the first bad byte).

    Example:

    >>> read_lines("data/samples/tiny_parallel/test.en")[0]  # doctest: +SKIP
    'A girl runs across the street.'
    """
    text = read_text_file(path, allow_empty=True, error=ParallelDataError)
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def read_parallel_files(
    source_path: str | os.PathLike, target_path: str | os.PathLike
) -> ParallelTexts:
    """Reads two line-aligned files into sentence pairs.

    Each line is stripped of surrounding whitespace and otherwise kept as read.

    Args:
        source_path: source-language file, plain or `.gz`.
        target_path: target-language file, line i translating line i of the source.

    Returns:
        A `ParallelTexts` in file order.

    Raises:
        FileNotFoundError: if a file does not exist.
        ParallelDataError: if the files differ in line count (both files and counts
            named), a line is empty on either side (file and line named), the files are
            empty, or `read_lines` fails.

    Example:

    >>> pairs = read_parallel_files("train.de.gz", "train.en.gz")  # doctest: +SKIP
    >>> len(pairs), pairs.sources[0][:16]  # doctest: +SKIP
    (29000, 'Zwei junge weiße')
    """
    paths = (pathlib.Path(source_path), pathlib.Path(target_path))
    sides = [[line.strip() for line in read_lines(path)] for path in paths]
    if len(sides[0]) != len(sides[1]):
        raise ParallelDataError(
            f"{paths[0]} has {len(sides[0])} lines but {paths[1]} has {len(sides[1])}; "
            f"parallel files must be line-aligned."
        )
    if not sides[0]:
        raise ParallelDataError(f"{paths[0]} and {paths[1]} are empty.")
    for path, lines in zip(paths, sides):
        for number, line in enumerate(lines, start=1):
            if not line:
                raise ParallelDataError(f"{path}:line {number}: empty line.")
    return ParallelTexts(tuple(sides[0]), tuple(sides[1]))


def read_tab_pairs(path: str | os.PathLike) -> ParallelTexts:
    """Reads `first<TAB>second` lines (the `spa.txt` format: `English<TAB>Spanish`).

    Args:
        path: a UTF-8 file, plain or `.gz`.

    Returns:
        `ParallelTexts(sources=first fields, targets=second fields)`, both stripped.

    Raises:
        ParallelDataError: for a line without exactly 2 tab-separated fields, an empty
            field, an empty file, or bad bytes; the message names file and line.

    Example:

    >>> pairs = read_tab_pairs("/work/shared/data/spa-eng/spa.txt")  # doctest: +SKIP
    >>> pairs.sources[0], pairs.targets[0]  # doctest: +SKIP
    ('Go.', 'Ve.')
    """
    path = pathlib.Path(path)
    firsts, seconds = [], []
    for number, line in enumerate(read_lines(path), start=1):
        fields = [field.strip() for field in line.split("\t")]
        if len(fields) != 2:
            raise ParallelDataError(
                f"{path}:line {number}: expected 2 tab-separated fields, found {len(fields)}."
            )
        if not fields[0] or not fields[1]:
            side = "first" if not fields[0] else "second"
            raise ParallelDataError(f"{path}:line {number}: the {side} field is empty.")
        firsts.append(fields[0])
        seconds.append(fields[1])
    if not firsts:
        raise ParallelDataError(f"{path} is empty.")
    return ParallelTexts(tuple(firsts), tuple(seconds))


def split_by_connected_pairs(
    pairs: ParallelTexts,
    *,
    seed: int = 0,
    test_fraction: float = 0.1,
    validation_fraction: float = 0.1,
) -> dict[str, ParallelTexts]:
    """Splits pairs so that no source and no target sentence is in two splits (the
    `SPA_ENG_SPLIT` rule), whichever side is translated into which.

    Two pairs are connected when they share their source or their target sentence; a
    group is a connected component (e.g. "Go." -> "Ve." and "Go." -> "Vete." and "Leave."
    -> "Vete." are one group). The groups, in order of their first pair, are permuted
    with `np.random.default_rng(seed)`; the first `round(test_fraction * groups)` go to
    test, the next `round(validation_fraction * groups)` to validation, the rest to
    train. Every split keeps the pairs' original order.

    Returns:
        `{"train", "validation", "test"}` -> `ParallelTexts`.

    Raises:
        ValueError: if a fraction is not in (0, 1), they sum to 1 or more, or a split
            would be empty.

    Example:
        >>> pairs = ParallelTexts(
        ...     ("Go.", "Go.", "Leave.", "Hi.", "Run."), ("Ve.", "Vete.", "Vete.", "Hola.", "Corre.")
        ... )
        >>> splits = split_by_connected_pairs(pairs, test_fraction=0.3, validation_fraction=0.3)
        >>> {name: part.sources for name, part in splits.items()}
        {'train': ('Hi.',), 'validation': ('Go.', 'Go.', 'Leave.'), 'test': ('Run.',)}
    """
    group_of = _connected_groups(pairs)
    groups = list(dict.fromkeys(group_of))  # first-appearance order, not hash order
    n_test, n_val = round(test_fraction * len(groups)), round(validation_fraction * len(groups))
    sizes_ok = 0 < n_test and 0 < n_val and n_test + n_val < len(groups)
    if not (0 < test_fraction < 1 and 0 < validation_fraction < 1 and sizes_ok):
        raise ValueError(
            f"Cannot split {len(groups)} groups of connected pairs into non-empty parts. "
            f"Received: test_fraction={test_fraction}, validation_fraction={validation_fraction}"
        )
    shuffled = [groups[i] for i in np.random.default_rng(seed).permutation(len(groups))]
    split_of = dict.fromkeys(shuffled[n_test + n_val :], "train")
    split_of.update(dict.fromkeys(shuffled[n_test : n_test + n_val], "validation"))
    split_of.update(dict.fromkeys(shuffled[:n_test], "test"))
    out = {}
    for split in ("train", "validation", "test"):
        keep = [i for i, g in enumerate(group_of) if split_of[g] == split]
        out[split] = ParallelTexts(
            tuple(pairs.sources[i] for i in keep), tuple(pairs.targets[i] for i in keep)
        )
    return out


def _connected_groups(pairs: ParallelTexts) -> list[int]:
    """For each pair, the index of the first pair of its connected component (pairs are
    connected through a shared source or a shared target sentence): union-find."""
    parent = list(range(len(pairs)))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_pair = {}
    for i, sentences in enumerate(zip(pairs.sources, pairs.targets)):
        for side, sentence in enumerate(sentences):
            a, b = root(i), root(first_pair.setdefault((side, sentence), i))
            if a != b:
                parent[max(a, b)] = min(a, b)  # the root is always the group's first pair
    return [root(i) for i in range(len(pairs))]


def load_translation_splits(
    name_or_path: str | os.PathLike,
    source_language: str,
    target_language: str,
    *,
    data_dir: str | os.PathLike | None = None,
    seed: int = 0,
) -> dict[str, ParallelTexts]:
    """Loads a parallel corpus as train / validation / test pairs in one direction.

    The split definitions are in the module docstring and the dataset cards.

    Args:
        name_or_path: `"multi30k"`, `"spa-eng"`, or a directory of line-aligned files.
        source_language: e.g. `"de"`; the file suffix for a directory.
        target_language: e.g. `"en"`.
        data_dir: mirror root for registered names (see `textrnn.data.fetching.fetch`).
        seed: seed of the spa-eng split (0 is the recorded `SPA_ENG_SPLIT`); unused
            by the other corpora, whose splits are fixed files.

    Returns:
        `{"train", "validation", "test"}` -> `ParallelTexts`; a directory without test
        files gives no `"test"` key.

    Raises:
        ValueError: for languages the corpus does not have (the message lists them), equal
            source and target, or a registered dataset that is not a translation corpus.
        FileNotFoundError: for a path that does not exist or lacks files (the message
            says which names were looked for and lists the registered datasets).
        ParallelDataError: for misaligned or malformed files.

    Example:

    >>> splits = load_translation_splits("multi30k", "de", "en")  # doctest: +SKIP
    >>> {k: len(v) for k, v in splits.items()}  # doctest: +SKIP
    {'train': 29000, 'validation': 1014, 'test': 1000}
    """
    if source_language == target_language:
        raise ValueError(f"Expected two different languages. Received: {source_language!r} twice")
    key = os.fspath(name_or_path)
    pair = (source_language, target_language)
    if key == "multi30k":
        _check_languages(key, pair, MULTI30K_LANGUAGES)
        raw = fetch("multi30k", data_dir) / "raw"
        files = {
            s: [raw / f"{stem}.{lang}.gz" for lang in pair] for s, stem in MULTI30K_STEMS.items()
        }
        return {split: read_parallel_files(*paths) for split, paths in files.items()}
    if key == "spa-eng":
        _check_languages(key, pair, SPA_ENG_LANGUAGES)
        english_spanish = read_tab_pairs(fetch("spa-eng", data_dir) / "spa.txt")
        fractions = {k: SPA_ENG_SPLIT[k] for k in ("test_fraction", "validation_fraction")}
        splits = split_by_connected_pairs(english_spanish, seed=seed, **fractions)
        return {k: v.swapped() if source_language == "es" else v for k, v in splits.items()}
    if key in DATASETS:
        raise ValueError(
            f"Dataset {key!r} is not a translation corpus; translation corpora: "
            f"{', '.join(TRANSLATION_DATASETS)}."
        )
    return _load_directory(pathlib.Path(key).expanduser(), key, pair)


def _check_languages(name: str, pair: tuple[str, str], known: tuple[str, str]) -> None:
    if set(pair) != set(known):
        raise ValueError(
            f"Dataset {name!r} has languages {known} (either direction). Received: "
            f"source_language={pair[0]!r}, target_language={pair[1]!r}"
        )


def _load_directory(
    folder: pathlib.Path, key: str, pair: tuple[str, str]
) -> dict[str, ParallelTexts]:
    registered = f"registered datasets: {', '.join(sorted(DATASETS))}"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{key!r} is neither a registered translation corpus "
            f"({', '.join(TRANSLATION_DATASETS)}) nor a directory ({registered})."
        )
    out = {}
    for split, stems in (
        ("train", ("train",)),
        ("validation", VALIDATION_STEMS),
        ("test", ("test",)),
    ):
        found = {stem: [_files(folder, stem, lang) for lang in pair] for stem in stems}
        found = {stem: sides for stem, sides in found.items() if any(sides)}
        if not found and split == "test":
            continue
        files = [f for sides in found.values() for side in sides for f in side]
        if len(found) > 1 or any(len(side) > 1 for sides in found.values() for side in sides):
            raise ValueError(f"{folder} holds several {split} files: {[f.name for f in files]}.")
        if len(files) < 2:
            looked = ", ".join(f"{stem}.{lang}[.gz]" for stem in (found or stems) for lang in pair)
            raise FileNotFoundError(
                f"{folder} lacks a complete {split} pair: looked for {looked}. A translation "
                f"directory holds train.*, one of {'/'.join(VALIDATION_STEMS)}.* and optionally "
                f"test.*, plain or .gz ({registered})."
            )
        out[split] = read_parallel_files(*files)
    return out


def _files(folder: pathlib.Path, stem: str, lang: str) -> list[pathlib.Path]:
    return [p for p in (folder / f"{stem}.{lang}", folder / f"{stem}.{lang}.gz") if p.is_file()]


def load_splits(cfg):
    """The splits of a translation recipe's dataset (`cfg.data`, a `TranslationDataConfig`),
    as `load_translation_splits` gives them."""
    return load_translation_splits(
        cfg.data.dataset,
        cfg.data.source_language,
        cfg.data.target_language,
        seed=cfg.data.split_seed,
    )
