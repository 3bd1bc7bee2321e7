"""Split hygiene: vocabularies and tokenisers are learned from the training split only, and
the splits of every dataset share no text beyond the known overlaps of official splits."""

import shutil

import pytest
from conftest import (
    TINY_CORPUS,
    TINY_OVERRIDES,
    TINY_PARALLEL,
    TINY_SENTIMENT,
    TINY_SENTIMENT_OVERRIDES,
    TINY_TRANSLATION_OVERRIDES,
    require_corpus,
)

from textrnn.charlm.train import train_charlm
from textrnn.sentiment.train import train_sentiment
from textrnn.training.config import load_config
from textrnn.training.runs import load_run
from textrnn.translation.train import train_translation


def _without(overrides, *prefixes):
    return [o for o in overrides if not o.startswith(prefixes)]


def test_the_character_vocabulary_sees_only_the_training_text(tmp_path):
    # The last 10% of the corpus validates: a character that occurs only there must not
    # be in the vocabulary.
    text = TINY_CORPUS.read_text(encoding="utf-8")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(text + "§" * (len(text) // 20), encoding="utf-8")
    cfg = load_config(None, _without(TINY_OVERRIDES, "data.dataset") + [f"data.dataset='{corpus}'"])
    train_charlm(cfg, tmp_path / "run", verbose=0)
    _, tokenizer, _ = load_run(tmp_path / "run")
    assert "§" not in tokenizer.characters
    assert set(tokenizer.characters) <= set(text)


def test_the_sentiment_vocabulary_sees_only_the_training_split(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(TINY_SENTIMENT, data)
    for name, word in (("dev.tsv", "zyzzyvaeval"), ("test.tsv", "quixotictest")):
        with open(data / name, "a", encoding="utf-8") as f:
            f.write(f"a {word} film\t1\n")
    overrides = _without(TINY_SENTIMENT_OVERRIDES, "data.dataset", "train.epochs")
    cfg = load_config(
        None, [*overrides, f"data.dataset='{data}'", "train.epochs=1"], task="sentiment"
    )
    train_sentiment(cfg, tmp_path / "run", verbose=0)
    vocabulary = (tmp_path / "run" / "vocab.txt").read_text(encoding="utf-8").split()
    assert "film" in vocabulary
    assert "zyzzyvaeval" not in vocabulary and "quixotictest" not in vocabulary


def test_the_wordpiece_vocabularies_see_only_the_training_split(tmp_path):
    # WordPiece keeps every character it sees: characters that occur only in validation
    # and test sentences must not appear in any piece.
    data = tmp_path / "data"
    shutil.copytree(TINY_PARALLEL, data)
    for split, (de, en) in {"validation": ("Ǆ", "Ʃ"), "test": ("Ǣ", "Ɵ")}.items():
        for lang, char in (("de", de), ("en", en)):
            with open(data / f"{split}.{lang}", "a", encoding="utf-8") as f:
                f.write(f"Ein {char}{char} rennt.\n" if lang == "de" else f"A {char}{char} runs.\n")
    overrides = _without(TINY_TRANSLATION_OVERRIDES, "data.dataset", "train.epochs")
    cfg = load_config(
        None, [*overrides, f"data.dataset='{data}'", "train.epochs=1"], task="translate"
    )
    train_translation(cfg, tmp_path / "run", verbose=0)
    for name in ("source_vocab.txt", "target_vocab.txt"):
        pieces = (tmp_path / "run" / name).read_text(encoding="utf-8")
        assert "e" in pieces
        assert not set("ǄƩǢƟ") & set(pieces), name


def _overlaps(splits, key):
    names = [n for n in ("train", "validation", "test") if n in splits]
    sets = {n: set(key(splits[n])) for n in names}
    return {f"{a}&{b}": len(sets[a] & sets[b]) for i, a in enumerate(names) for b in names[i + 1 :]}


@pytest.mark.corpus
def test_multi30k_official_splits_share_one_sentence_a_side():
    require_corpus("multi30k")
    from textrnn.translation.data import load_translation_splits

    splits = load_translation_splits("multi30k", "de", "en")
    # One German and one English sentence of validation also occur in training, each in
    # another pair (data/multi30k.md); no pair occurs in two splits.
    expected = {"train&validation": 1, "train&test": 0, "validation&test": 0}
    assert _overlaps(splits, lambda p: p.sources) == expected
    assert _overlaps(splits, lambda p: p.targets) == expected
    assert set(splits["train"].sources) & set(splits["validation"].sources) == {
        "Drei Hunde spielen im Schnee."
    }
    pairs = _overlaps(splits, lambda p: zip(p.sources, p.targets))
    assert pairs == {"train&validation": 0, "train&test": 0, "validation&test": 0}


@pytest.mark.corpus
def test_sst2_test_shares_two_short_sentences_with_the_training_phrases():
    require_corpus("sst2")
    from textrnn.sentiment.data import load_sentiment_splits

    splits = load_sentiment_splits("sst2")
    assert _overlaps(splits, lambda s: s.texts) == {
        "train&validation": 0,
        "train&test": 2,
        "validation&test": 0,
    }
    assert set(splits["train"].texts) & set(splits["test"].texts) == {"no . .", "what 's next ?"}


@pytest.mark.corpus
def test_imdb_duplicate_reviews_across_splits_are_counted():
    require_corpus("imdb")
    from textrnn.sentiment.data import load_sentiment_splits

    # IMDB holds some reviews more than once; data/imdb.md gives these counts.
    blocks = load_sentiment_splits("imdb", validation_split="movie_blocks")
    assert _overlaps(blocks, lambda s: s.texts) == {
        "train&validation": 7,
        "train&test": 121,
        "validation&test": 2,
    }
    random = load_sentiment_splits("imdb")
    assert _overlaps(random, lambda s: s.texts) == {
        "train&validation": 21,
        "train&test": 107,
        "validation&test": 16,
    }
