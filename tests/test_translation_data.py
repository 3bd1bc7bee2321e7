"""Tests for textrnn.translation.data: strict parallel readers and the translation splits."""

import gzip
import pathlib

import numpy as np
import pytest
from conftest import require_corpus

from textrnn.translation.data import (
    SPA_ENG_SPLIT,
    ParallelDataError,
    ParallelTexts,
    load_translation_splits,
    read_lines,
    read_parallel_files,
    read_tab_pairs,
    split_by_connected_pairs,
)

TINY = pathlib.Path(__file__).resolve().parents[1] / "data" / "samples" / "tiny_parallel"


def _write(path, text, compress=False):
    data = text.encode("utf-8") if isinstance(text, str) else text
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


# -- read_lines / read_parallel_files ---------------------------------------


def test_read_lines_plain_and_gzip_agree(tmp_path):
    text = "Ein Hund läuft.\r\nGroße Straße  \n  Zwei Männer.\n"
    plain = read_lines(_write(tmp_path / "a.de", text))
    packed = read_lines(_write(tmp_path / "a.de.gz", text, compress=True))
    assert plain == packed == ["Ein Hund läuft.", "Große Straße  ", "  Zwei Männer."]
    assert read_lines(_write(tmp_path / "b.de", "ohne Zeilenende")) == ["ohne Zeilenende"]
    # Only \n separates lines: a line separator character inside a caption stays put.
    assert read_lines(_write(tmp_path / "c.de", "a\u2028b\nc\n")) == ["a\u2028b", "c"]


@pytest.mark.parametrize("name, compress", [("bad.de", False), ("bad.de.gz", True)])
def test_read_lines_names_line_and_offset_of_bad_bytes(tmp_path, name, compress):
    path = _write(tmp_path / name, b"gut\nStra\xdfe\n", compress)
    with pytest.raises(ParallelDataError) as info:
        read_lines(path)
    message = str(info.value)
    assert str(path) in message and ":line 2:" in message
    assert "byte offset 8" in message and "0xdf" in message


def test_read_lines_rejects_broken_gzip_and_directories(tmp_path):
    with pytest.raises(ParallelDataError, match="not a readable gzip file"):
        read_lines(_write(tmp_path / "x.en.gz", b"plain text, not gzip\n"))
    with pytest.raises(ParallelDataError, match="is a directory"):
        read_lines(tmp_path)
    with pytest.raises(FileNotFoundError, match="missing.en"):
        read_lines(tmp_path / "missing.en")


def test_parallel_files_strip_and_pair_lines(tmp_path):
    de = _write(tmp_path / "t.de", " Ein Hund läuft im Park. \nEine Katze schläft.\n")
    en = _write(tmp_path / "t.en.gz", "A dog runs in the park.\nA cat sleeps.\t\n", compress=True)
    pairs = read_parallel_files(de, en)
    assert pairs == ParallelTexts(
        ("Ein Hund läuft im Park.", "Eine Katze schläft."),
        ("A dog runs in the park.", "A cat sleeps."),
    )
    assert len(pairs) == 2 and pairs.swapped().sources == pairs.targets


def test_parallel_files_with_different_counts_name_both(tmp_path):
    de = _write(tmp_path / "train.de", "eins\nzwei\ndrei\n")
    en = _write(tmp_path / "train.en", "one\ntwo\n")
    with pytest.raises(ParallelDataError) as info:
        read_parallel_files(de, en)
    assert str(info.value).startswith(f"{de} has 3 lines but {en} has 2")


@pytest.mark.parametrize("side", ["de", "en"])
def test_parallel_empty_line_names_file_and_line(tmp_path, side):
    texts = {"de": "eins\nzwei\ndrei\n", "en": "one\ntwo\nthree\n"}
    texts[side] = texts[side].replace("zwei", "  ").replace("two", "")
    de, en = (_write(tmp_path / f"s.{lang}", texts[lang]) for lang in ("de", "en"))
    with pytest.raises(ParallelDataError, match=r":line 2: empty line") as info:
        read_parallel_files(de, en)
    assert str(tmp_path / f"s.{side}") in str(info.value)


def test_parallel_texts_check_lengths():
    with pytest.raises(ValueError, match="as many targets as sources"):
        ParallelTexts(("a", "b"), ("x",))


# -- spa-eng format and split rule ------------------------------------------


@pytest.mark.parametrize(
    "line, pattern",
    [
        ("Hello.", r":line 2: expected 2 tab-separated fields, found 1"),
        ("Hello.\tHola.\tCC-BY", r":line 2: expected 2 tab-separated fields, found 3"),
        ("Hello.\t ", r":line 2: the second field is empty"),
        ("\tHola.", r":line 2: the first field is empty"),
    ],
)
def test_tab_pairs_malformed_line_is_named(tmp_path, line, pattern):
    path = _write(tmp_path / "spa.txt", f"Go.\tVe.\n{line}\nRun!\t¡Corre!\n")
    with pytest.raises(ParallelDataError, match=pattern) as info:
        read_tab_pairs(path)
    assert str(path) in str(info.value)


def test_tab_pairs_reads_english_spanish(tmp_path):
    pairs = read_tab_pairs(_write(tmp_path / "spa.txt", "Go.\tVe.\nGo.\tVete.\nRun!\t¡Corre!\n"))
    assert pairs.sources == ("Go.", "Go.", "Run!") and pairs.targets == ("Ve.", "Vete.", "¡Corre!")


def _toy_pairs():
    # 40 English sentences; sentence i has (i % 3) + 1 Spanish translations, and every
    # fifth English sentence shares its first translation with the next one (a chain
    # through the target side: e0 - s0.0 - e1 is one group).
    rows = [(f"e{i}", f"s{i}.{k}") for i in range(40) for k in range(i % 3 + 1)]
    rows += [(f"e{i + 1}", f"s{i}.0") for i in range(0, 40, 5)]
    return ParallelTexts(tuple(r[0] for r in rows), tuple(r[1] for r in rows))


def _no_sentence_in_two_splits(splits):
    for side in ("sources", "targets"):
        seen = {name: set(getattr(part, side)) for name, part in splits.items()}
        names = list(seen)
        for a in range(len(names)):
            for b in range(a + 1, len(names)):
                assert not seen[names[a]] & seen[names[b]], (side, names[a], names[b])


def test_connected_split_keeps_groups_together_and_file_order():
    pairs = _toy_pairs()
    splits = split_by_connected_pairs(pairs, seed=5)
    _no_sentence_in_two_splits(splits)
    _no_sentence_in_two_splits({k: v.swapped() for k, v in splits.items()})
    # 40 English sentences, 8 of them chained to the next one: 32 groups.
    groups = [[f"e{i}"] if i % 5 else [f"e{i}", f"e{i + 1}"] for i in range(40) if i % 5 != 1]
    assert len(groups) == 32
    permuted = [groups[i] for i in np.random.default_rng(5).permutation(32)]
    expected = {
        "test": permuted[:3],
        "validation": permuted[3:6],
        "train": permuted[6:],
    }  # round(0.1 * 32) = 3 groups each
    for name, part in splits.items():
        assert set(part.sources) == {e for group in expected[name] for e in group}
    everything = list(zip(pairs.sources, pairs.targets))
    for part in splits.values():
        kept = list(zip(part.sources, part.targets))
        assert kept == [p for p in everything if p[0] in set(part.sources)]  # file order
    assert sum(len(p) for p in splits.values()) == len(pairs)
    assert split_by_connected_pairs(pairs, seed=5) == splits
    assert split_by_connected_pairs(pairs, seed=6)["test"] != splits["test"]
    with pytest.raises(ValueError, match="non-empty parts"):
        split_by_connected_pairs(pairs, test_fraction=0.5, validation_fraction=0.5)


def test_grouping_by_the_source_alone_would_leak_through_a_shared_target():
    # The flat split grouped by English only: "Leave." and "Go." share the translation
    # "Vete.", so es->en could test on a source it trained on. Connected, they stay together.
    pairs = ParallelTexts(
        ("Go.", "Leave.", "Hi.", "Run.", "Stop!"), ("Vete.", "Vete.", "Hola.", "Corre.", "Para.")
    )
    for seed in range(20):
        splits = split_by_connected_pairs(
            pairs, seed=seed, test_fraction=0.25, validation_fraction=0.25
        )
        _no_sentence_in_two_splits(splits)
        together = [name for name, part in splits.items() if "Go." in part.sources]
        assert "Leave." in splits[together[0]].sources


# -- directories and the tiny sample ----------------------------------------


def test_tiny_sample_loads_both_directions():
    de_en = load_translation_splits(TINY, "de", "en")
    assert {k: len(v) for k, v in de_en.items()} == {"train": 80, "validation": 12, "test": 12}
    assert de_en["train"].sources[0] == "Ein Hund läuft im Park."
    assert de_en["train"].targets[0] == "A dog runs in the park."
    text = "".join(s for part in de_en.values() for s in part.sources)
    assert {"ä", "ö", "ü", "ß"} <= set(text)
    en_de = load_translation_splits(TINY, "en", "de")
    assert en_de["test"] == de_en["test"].swapped()


def test_directory_accepts_gzip_and_other_validation_names(tmp_path):
    _write(tmp_path / "train.de.gz", "eins\nzwei\n", compress=True)
    _write(tmp_path / "train.en", "one\ntwo\n")
    with pytest.raises(FileNotFoundError, match=r"validation.de\[.gz\].*dev.en\[.gz\]"):
        load_translation_splits(tmp_path, "de", "en")
    _write(tmp_path / "dev.de", "drei\n")
    with pytest.raises(FileNotFoundError, match=r"looked for dev.de\[.gz\], dev.en\[.gz\]"):
        load_translation_splits(tmp_path, "de", "en")
    _write(tmp_path / "dev.en.gz", "three\n", compress=True)
    splits = load_translation_splits(tmp_path, "de", "en")
    assert set(splits) == {"train", "validation"}  # no test files, no "test" key
    assert splits["validation"] == ParallelTexts(("drei",), ("three",))
    _write(tmp_path / "val.de", "vier\n")
    with pytest.raises(ValueError, match="several validation files"):
        load_translation_splits(tmp_path, "de", "en")


def test_load_translation_errors(tmp_path):
    with pytest.raises(ValueError, match=r"\('de', 'en'\)"):
        load_translation_splits("multi30k", "de", "fr")
    with pytest.raises(ValueError, match=r"\('en', 'es'\)"):
        load_translation_splits("spa-eng", "en", "de")
    with pytest.raises(ValueError, match="two different languages"):
        load_translation_splits("multi30k", "en", "en")
    with pytest.raises(ValueError, match="not a translation corpus"):
        load_translation_splits("sst2", "en", "de")
    with pytest.raises(FileNotFoundError, match="neither a registered.*spa-eng"):
        load_translation_splits(tmp_path / "nowhere", "de", "en")


# -- real corpora (TEXTRNN_DATA_DIR) ----------------------------------------


@pytest.mark.corpus
def test_multi30k_counts_and_first_pair():
    require_corpus("multi30k")
    splits = load_translation_splits("multi30k", "de", "en")
    assert {k: len(v) for k, v in splits.items()} == {
        "train": 29000,
        "validation": 1014,
        "test": 1000,
    }
    assert (
        splits["train"].sources[0]
        == "Zwei junge weiße Männer sind im Freien in der Nähe vieler Büsche."
    )
    assert splits["train"].targets[0] == "Two young, White males are outside near many bushes."
    reverse = load_translation_splits("multi30k", "en", "de")
    assert reverse["validation"] == splits["validation"].swapped()


@pytest.fixture(scope="module")
def spa_eng():
    require_corpus("spa-eng")
    return load_translation_splits("spa-eng", "en", "es")


@pytest.mark.corpus
def test_spa_eng_split_shares_no_sentence_and_is_recorded(spa_eng):
    sizes = {k: len(v) for k, v in spa_eng.items()}
    assert sizes == SPA_ENG_SPLIT["expected_counts"]
    assert sum(sizes.values()) == 118964
    _no_sentence_in_two_splits(spa_eng)  # no English and no Spanish string in two splits
    english = {k: set(v.sources) for k, v in spa_eng.items()}
    assert [len(english[k]) for k in ("train", "validation", "test")] == [82322, 10260, 10322]
    assert spa_eng["train"].sources[0] == "Go." and spa_eng["train"].targets[0] == "Ve."


@pytest.mark.corpus
def test_spa_eng_split_is_deterministic_and_directional(spa_eng):
    again = load_translation_splits("spa-eng", "es", "en")
    assert again["test"] == spa_eng["test"].swapped()
    assert again["validation"] == spa_eng["validation"].swapped()
    other = load_translation_splits("spa-eng", "en", "es", seed=1)
    assert set(other["test"].sources) != set(spa_eng["test"].sources)
