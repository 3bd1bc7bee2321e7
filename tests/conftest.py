"""Shared fixtures: a tiny trained character model, made once per test session."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

REPO = Path(__file__).resolve().parent.parent
TINY_CORPUS = REPO / "data" / "samples" / "tiny_corpus.txt"

TINY_OVERRIDES = [
    f"data.dataset='{TINY_CORPUS}'",
    "data.seq_len=32",
    "data.batch_size=8",
    "model.units=32",
    "model.embedding_dim=8",
    "train.epochs=2",
    "train.steps_per_epoch=3",
    "train.warmup_steps=1",
    "train.validation_windows=8",
]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A finished training run directory with a tiny LSTM on the project's tiny corpus."""
    from textrnn.charlm_training import train_charlm
    from textrnn.config import load_config

    run_dir = tmp_path_factory.mktemp("tiny") / "run"
    train_charlm(load_config(None, TINY_OVERRIDES), run_dir, verbose=0)
    return run_dir


def require_corpus(name):
    """Skips the calling test, with a reason, unless TEXTRNN_DATA_DIR holds `name/`."""
    mirror = os.environ.get("TEXTRNN_DATA_DIR")
    if not mirror or not (Path(mirror) / name).is_dir():
        pytest.skip(f"TEXTRNN_DATA_DIR does not hold {name}/ (point it at e.g. ../shared/data)")
