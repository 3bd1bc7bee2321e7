"""Tests for textrnn.sentiment.data: strict TSV/JSONL readers and the sentiment splits."""

import gzip
import json
import pathlib
import re
from collections import Counter

import numpy as np
import pytest
from conftest import require_corpus

from textrnn.data.fetching import fetch
from textrnn.sentiment.data import (
    LabeledDataError,
    LabeledTexts,
    load_sentiment_splits,
    read_imdb_jsonl,
    read_labeled_tsv,
    split_validation,
    split_validation_by_movie_blocks,
)

TINY = pathlib.Path(__file__).resolve().parents[1] / "data" / "samples" / "tiny_sentiment"


def _tsv(tmp_path, content, name="data.tsv"):
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


# -- read_labeled_tsv -------------------------------------------------------


def test_reads_rows_in_order_with_int32_labels(tmp_path):
    path = _tsv(tmp_path, "sentence\tlabel\na fine film\t1\na dull film\t0\nso so\t1\n")
    data = read_labeled_tsv(path)
    assert data.texts == ("a fine film", "a dull film", "so so")
    assert data.labels.dtype == np.int32 and data.labels.tolist() == [1, 0, 1]
    assert len(data) == 3


def test_glue_trailing_space_crlf_bom_and_trailing_blank_line(tmp_path):
    glue = _tsv(tmp_path, "sentence\tlabel\nhide new secretions \t0\nwarm , funny \t1\n\n")
    assert read_labeled_tsv(glue).texts == ("hide new secretions", "warm , funny")
    crlf = _tsv(
        tmp_path, b"\xef\xbb\xbfsentence\tlabel\r\nStra\xc3\x9fe\t1\r\nb\t0\r\n", "crlf.tsv"
    )
    data = read_labeled_tsv(crlf)
    assert data.texts == ("Straße", "b") and data.labels.tolist() == [1, 0]


def test_columns_are_found_by_name(tmp_path):
    path = _tsv(tmp_path, "index\tsentence\tlabel\n0\tfirst\t1\n1\tsecond\t0\n")
    data = read_labeled_tsv(path)
    assert data.texts == ("first", "second") and data.labels.tolist() == [1, 0]
    three = _tsv(tmp_path, "text\ty\nfine\t2\n", "three.tsv")
    data = read_labeled_tsv(three, text_column="text", label_column="y", num_classes=3)
    assert data.labels.tolist() == [2]


@pytest.mark.parametrize(
    "content, pattern",
    [
        (
            "sentence\tlabel\ngood\t1\ntoo\tmany\t1\nok\t0\n",
            r":line 3: expected 2 tab-separated fields, found 3",
        ),
        (
            "sentence\tlabel\ngood\t1\nno tab here\n",
            r":line 3: expected 2 tab-separated fields, found 1",
        ),
        ("sentence\tlabel\ngood\t1\n\nbad\t0\n", r":line 3: .*found 1 \(a blank line\)"),
        ("sentence\tlabel\ngood\t1\nbad\t2\n", r":line 3: label '2' is not an integer in \[0, 2\)"),
        ("sentence\tlabel\ngood\tpos\n", r":line 2: label 'pos' is not an integer"),
        ("sentence\tlabel\ngood\t-1\n", r":line 2: label '-1'"),
        ("sentence\tlabel\ngood\t\n", r":line 2: label ''"),
        ("sentence\tlabel\ngood\t1\n   \t0\n", r":line 3: empty text"),
        ("sentence\tlabel\n", r"has a header but no rows"),
        ("", r"is empty: expected a header"),
        (
            "text\tlabel\ngood\t1\n",
            r":line 1: the header must name .*'sentence'.*found \['text', 'label'\]",
        ),
        ("sentence\nonly text\n", r"found \['sentence'\]"),
    ],
)
def test_bad_tsv_is_reported_with_file_and_line(tmp_path, content, pattern):
    path = _tsv(tmp_path, content)
    with pytest.raises(LabeledDataError, match=pattern) as info:
        read_labeled_tsv(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_non_utf8_names_line_and_byte_offset(tmp_path):
    path = _tsv(tmp_path, b"sentence\tlabel\ngood\t1\ncaf\xe9\t0\n")
    with pytest.raises(LabeledDataError) as info:
        read_labeled_tsv(path)
    message = str(info.value)
    assert str(path) in message and ":line 3:" in message
    assert "byte offset 25" in message and "0xe9" in message


def test_missing_file_and_bad_num_classes(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.tsv"):
        read_labeled_tsv(tmp_path / "nope.tsv")
    path = _tsv(tmp_path, "sentence\tlabel\ngood\t1\n")
    with pytest.raises(ValueError, match="num_classes"):
        read_labeled_tsv(path, num_classes=1)


def test_labeled_texts_checks_lengths_and_is_read_only():
    with pytest.raises(ValueError, match="one label per text"):
        LabeledTexts(("a", "b"), np.array([1]))
    data = LabeledTexts(["a", "b"], [0, 1])
    assert data.texts == ("a", "b") and data.labels.dtype == np.int32
    with pytest.raises(ValueError):
        data.labels[0] = 1


# -- read_imdb_jsonl --------------------------------------------------------


def _jsonl(tmp_path, lines, name="reviews.jsonl.gz"):
    path = tmp_path / name
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    return path


def test_imdb_jsonl_reads_text_verbatim_and_labels(tmp_path):
    records = [
        {"id": "train/neg/0_3", "label": 0, "rating": 3, "text": "Dull.<br /><br />Very dull."},
        {"id": "train/pos/0_9", "label": 1, "rating": 9, "text": "Lovely\tfilm\nindeed"},
    ]
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    for name in ("reviews.jsonl.gz", "reviews.jsonl"):
        data = read_imdb_jsonl(_jsonl(tmp_path, lines, name))
        assert data.texts == ("Dull.<br /><br />Very dull.", "Lovely\tfilm\nindeed")
        assert data.labels.tolist() == [0, 1]
        assert data.ids == ("train/neg/0_3", "train/pos/0_9")
        assert data.take([1]).ids == ("train/pos/0_9",)
    assert read_imdb_jsonl(_jsonl(tmp_path, ['{"label": 0, "text": "no id"}'])).ids is None


@pytest.mark.parametrize(
    "bad, pattern",
    [
        ('{"label": 1, "text": "ok"', r"line 2: not valid JSON"),
        ('{"label": 1}', r"line 2: expected a JSON object with keys 'text' and 'label'"),
        ("[1, 2]", r"line 2: expected a JSON object"),
        ('{"label": 2, "text": "ok"}', r"line 2: label 2 is not an integer in \[0, 2\)"),
        ('{"label": "1", "text": "ok"}', r"line 2: label '1'"),
        ('{"label": 1, "text": " "}', r"line 2: empty or non-string 'text'"),
    ],
)
def test_imdb_jsonl_bad_line_is_named(tmp_path, bad, pattern):
    path = _jsonl(tmp_path, ['{"label": 0, "text": "fine"}', bad, '{"label": 1, "text": "x"}'])
    with pytest.raises(LabeledDataError, match=pattern) as info:
        read_imdb_jsonl(path)
    assert str(path) in str(info.value)


# -- splits -----------------------------------------------------------------


def test_split_validation_is_seeded_disjoint_and_ordered():
    data = LabeledTexts(tuple(f"t{i}" for i in range(50)), np.arange(50) % 2)
    train, validation = split_validation(data, 0.2, seed=3)
    order = np.random.default_rng(3).permutation(50)
    assert validation.texts == tuple(f"t{i}" for i in sorted(order[:10]))
    assert train.texts == tuple(f"t{i}" for i in sorted(order[10:]))
    assert train.labels.tolist() == [int(t[1:]) % 2 for t in train.texts]
    again, _ = split_validation(data, 0.2, seed=3)
    other, _ = split_validation(data, 0.2, seed=4)
    assert again.texts == train.texts and other.texts != train.texts
    with pytest.raises(ValueError, match="validation_fraction"):
        split_validation(data, 1.0, seed=0)
    with pytest.raises(ValueError, match="empty split"):
        split_validation(data, 0.001, seed=0)


def _imdb_like(n_per_folder=40):
    """Reviews in the mirror's order (neg then pos), ids shuffled within each folder."""
    rng = np.random.default_rng(7)
    ids, labels = [], []
    for label, folder in enumerate(("neg", "pos")):
        for number in rng.permutation(n_per_folder):
            ids.append(f"train/{folder}/{number}_{1 + 9 * label}")
            labels.append(label)
    return LabeledTexts(tuple(f"text of {i}" for i in ids), labels, ids)


def _number(review_id):
    return int(review_id.rsplit("/", 1)[1].split("_")[0])


def test_movie_block_split_takes_whole_blocks_of_consecutive_ids_per_label():
    data = _imdb_like()
    train, validation = split_validation_by_movie_blocks(data, 0.25, seed=1, block_size=5)
    assert len(train) == 60 and len(validation) == 20
    assert sorted(train.ids + validation.ids) == sorted(data.ids)
    assert np.bincount(validation.labels).tolist() == [10, 10]  # 2 of 8 blocks per folder
    for folder in ("neg", "pos"):
        numbers = {_number(i) for i in validation.ids if f"/{folder}/" in i}
        blocks = {n // 5 for n in numbers}
        assert len(blocks) == 2 and numbers == {n for b in blocks for n in range(5 * b, 5 * b + 5)}
    # Texts, labels and ids stay together, in file order.
    assert validation.texts == tuple(f"text of {i}" for i in validation.ids)
    rows = [data.ids.index(i) for i in validation.ids]
    assert rows == sorted(rows)
    again, _ = split_validation_by_movie_blocks(data, 0.25, seed=1, block_size=5)
    other, _ = split_validation_by_movie_blocks(data, 0.25, seed=2, block_size=5)
    assert again.ids == train.ids and other.ids != train.ids


def test_movie_block_split_errors_are_clear():
    data = _imdb_like()
    with pytest.raises(ValueError, match="needs IMDB review ids"):
        split_validation_by_movie_blocks(LabeledTexts(data.texts, data.labels), 0.1, seed=0)
    odd = LabeledTexts(("a", "b"), [0, 1], ("train/neg/7_3", "review-8"))
    with pytest.raises(ValueError, match=r"'review-8' \(example 1\)"):
        split_validation_by_movie_blocks(odd, 0.5, seed=0)
    with pytest.raises(ValueError, match=r"8 blocks of 5 reviews in 'train/neg' leaves an empty"):
        split_validation_by_movie_blocks(data, 0.01, seed=0, block_size=5)
    with pytest.raises(ValueError, match="block_size"):
        split_validation_by_movie_blocks(data, 0.1, seed=0, block_size=0)
    with pytest.raises(ValueError, match="validation_split"):
        load_sentiment_splits("imdb", validation_split="movies")
    with pytest.raises(ValueError, match="one id per text"):
        LabeledTexts(("a", "b"), [0, 1], ("x",))


def test_tiny_sample_loads_balanced():
    splits = load_sentiment_splits(TINY)
    assert {k: len(v) for k, v in splits.items()} == {"train": 60, "validation": 16, "test": 16}
    for data in splits.values():
        assert np.bincount(data.labels).tolist() == [len(data) // 2] * 2
    texts = [t for data in splits.values() for t in data.texts]
    assert len(set(texts)) == len(texts)


def test_directory_rules(tmp_path):
    rows = "sentence\tlabel\ngood\t1\nbad\t0\n"
    _tsv(tmp_path, rows, "train.tsv")
    with pytest.raises(FileNotFoundError, match=r"lacks validation.tsv \(or dev.tsv\).*sst2"):
        load_sentiment_splits(tmp_path)
    _tsv(tmp_path, rows, "dev.tsv")
    assert set(load_sentiment_splits(tmp_path)) == {"train", "validation"}
    _tsv(tmp_path, rows, "validation.tsv")
    with pytest.raises(ValueError, match="both validation.tsv and dev.tsv"):
        load_sentiment_splits(tmp_path)
    with pytest.raises(FileNotFoundError, match="neither a registered.*imdb"):
        load_sentiment_splits(tmp_path / "missing")
    with pytest.raises(ValueError, match="not a sentiment corpus"):
        load_sentiment_splits("multi30k")
    with pytest.raises(ValueError, match="validation_fraction"):
        load_sentiment_splits("imdb", validation_fraction=0.0)


# -- real corpora (TEXTRNN_DATA_DIR) ----------------------------------------


@pytest.mark.corpus
def test_sst2_counts_and_labels():
    require_corpus("sst2")
    splits = load_sentiment_splits("sst2")
    counts = {k: np.bincount(v.labels).tolist() for k, v in splits.items()}
    assert counts == {"train": [29780, 37569], "validation": [428, 444], "test": [912, 909]}
    assert splits["train"].texts[0] == "hide new secretions from the parental units"
    assert splits["test"].texts[0] == "uneasy mishmash of styles and genres ."


@pytest.fixture(scope="module")
def imdb_seed0():
    require_corpus("imdb")
    return load_sentiment_splits("imdb")


@pytest.mark.corpus
def test_imdb_validation_is_carved_from_train(imdb_seed0):
    splits = imdb_seed0
    sizes = {k: len(v) for k, v in splits.items()}
    assert sizes == {"train": 22500, "validation": 2500, "test": 25000}
    assert np.bincount(splits["test"].labels).tolist() == [12500, 12500]
    full = read_imdb_jsonl(fetch("imdb") / "imdb_train.jsonl.gz")
    order = np.random.default_rng(0).permutation(25000)
    validation_rows, train_rows = set(order[:2500].tolist()), set(order[2500:].tolist())
    assert not validation_rows & train_rows and len(validation_rows | train_rows) == 25000
    for part, rows in (("validation", validation_rows), ("train", train_rows)):
        assert splits[part].texts == tuple(full.texts[i] for i in sorted(rows))
        assert splits[part].labels.tolist() == [int(full.labels[i]) for i in sorted(rows)]
    # The same reviews, nothing lost or added (train has 96 repeated texts, so compare counts).
    both = Counter(splits["train"].texts) + Counter(splits["validation"].texts)
    assert both == Counter(full.texts)


@pytest.mark.corpus
def test_imdb_split_is_deterministic_per_seed(imdb_seed0):
    again = load_sentiment_splits("imdb", seed=0)
    other = load_sentiment_splits("imdb", seed=1)
    assert again["validation"].texts == imdb_seed0["validation"].texts
    assert np.array_equal(again["validation"].labels, imdb_seed0["validation"].labels)
    assert len(other["validation"]) == 2500
    assert other["validation"].texts != imdb_seed0["validation"].texts


@pytest.mark.corpus
def test_imdb_movie_block_validation_holds_unseen_movies(imdb_seed0):
    blocks = load_sentiment_splits("imdb", validation_split="movie_blocks")
    assert {k: len(v) for k, v in blocks.items()} == {
        "train": 22500,
        "validation": 2500,
        "test": 25000,
    }
    assert np.bincount(blocks["validation"].labels).tolist() == [1250, 1250]
    assert Counter(blocks["train"].texts + blocks["validation"].texts) == Counter(
        imdb_seed0["train"].texts + imdb_seed0["validation"].texts
    )

    # Names (capitalised words) of validation reviews that train never uses: the test
    # reviews (other movies) have many more than a random split's validation; the
    # movie-block validation comes close to test.
    def unseen_name_share(train, held_out):
        seen = {w for t in train.texts for w in re.findall(r"\b[A-Z][a-z]{2,}\b", t)}
        names = [w for t in held_out.texts for w in set(re.findall(r"\b[A-Z][a-z]{2,}\b", t))]
        return sum(w not in seen for w in names) / len(names)

    test_sample = imdb_seed0["test"].take(np.arange(0, 25000, 10))
    random_share = unseen_name_share(imdb_seed0["train"], imdb_seed0["validation"])
    block_share = unseen_name_share(blocks["train"], blocks["validation"])
    test_share = unseen_name_share(imdb_seed0["train"], test_sample)
    assert random_share < 0.8 * block_share and block_share > 0.75 * test_share
