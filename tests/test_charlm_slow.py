"""Slow: ten minutes of the shipped recipe on tinyshakespeare (`pytest -m slow`).

A regression guard for training quality, not a benchmark (the figures of record come from
`benchmarks/charlm_shakespeare.py`). In the full 60-minute recipe the first 8-minute epoch
alone reaches 1.73 nats/char on the validation windows.
"""

import pytest
from conftest import require_corpus

from textrnn.charlm.train import train_charlm
from textrnn.training.config import load_config

pytestmark = [pytest.mark.slow, pytest.mark.corpus]


def test_ten_minutes_of_the_recipe_beats_1_8_nats(tmp_path):
    require_corpus("tinyshakespeare")
    cfg = load_config(
        "models/charlm-shakespeare/config.toml",
        ["train.max_minutes=10", "train.epochs=2", "train.steps_per_epoch=300"],
    )
    results = train_charlm(cfg, tmp_path / "run", verbose=0)
    assert results["val_loss_windows"] < 1.8
    assert results["val_loss_sequential"] < results["val_loss_windows"]  # more context helps
