"""Slow: one epoch of each sentiment recipe on the real corpora (`pytest -m slow`).

Regression guards for training quality, not benchmarks (the figures of record come from
`benchmarks/sentiment_recipe.py`, see models/sentiment-*/results.md).
"""

import pytest
from conftest import require_corpus

from textrnn.config import load_config
from textrnn.sentiment_training import train_sentiment

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
