"""Slow: short trainings of the shipped recipes on the real corpora (`pytest -m slow`).

Regression guards for training quality, not benchmarks (the figures of record come from
`benchmarks/sentiment_recipe.py` and `benchmarks/translation_recipe.py`, see
models/*/results.md).
"""

import pytest
from conftest import require_corpus

from textrnn.sentiment.train import train_sentiment
from textrnn.training.config import load_config
from textrnn.translation.train import train_translation

pytestmark = [pytest.mark.slow, pytest.mark.corpus]


def test_one_epoch_of_the_sst2_recipe_passes_82_percent_on_dev(tmp_path):
    require_corpus("sst2")
    cfg = load_config("models/sentiment-sst2/config.toml", ["train.epochs=1"])
    results = train_sentiment(cfg, tmp_path / "run", verbose=0)
    assert results["validation"]["accuracy"] > 0.82
    assert results["padding_fraction_bucketed"] < results["padding_fraction_unbucketed"] / 2


def test_one_epoch_of_the_imdb_recipe_passes_85_percent_on_validation(tmp_path):
    require_corpus("imdb")
    cfg = load_config("models/sentiment-imdb/config.toml", ["train.epochs=1"])
    results = train_sentiment(cfg, tmp_path / "run", verbose=0)
    assert results["validation"]["accuracy"] > 0.85


def test_two_epochs_of_the_multi30k_recipe_pass_10_bleu(tmp_path):
    require_corpus("multi30k")
    cfg = load_config("models/translate-multi30k-de-en/config.toml", ["train.epochs=2"])
    results = train_translation(cfg, tmp_path / "run", verbose=0)
    assert results["validation"]["bleu"] > 10
    assert results["train_pairs_skipped_over_length"] == 0
