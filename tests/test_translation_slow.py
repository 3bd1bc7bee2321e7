"""Slow: two epochs of the Multi30k recipe (`pytest -m slow`).

A regression guard for training quality, not a benchmark (the figures of record come from
`benchmarks/translation_recipe.py`, see models/translate-multi30k-de-en/results.md).
"""

import pytest
from conftest import require_corpus

from textrnn.config import load_config
from textrnn.translation_training import train_translation

pytestmark = [pytest.mark.slow, pytest.mark.corpus]


def test_two_epochs_of_the_multi30k_recipe_pass_10_bleu(tmp_path):
    require_corpus("multi30k")
    cfg = load_config("models/translate-multi30k-de-en/config.toml", ["train.epochs=2"])
    results = train_translation(cfg, tmp_path / "run", verbose=0)
    assert results["validation"]["bleu"] > 10
    assert results["train_pairs_skipped_over_length"] == 0
