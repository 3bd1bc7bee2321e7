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
    from textrnn.charlm.train import train_charlm
    from textrnn.training.config import load_config

    run_dir = tmp_path_factory.mktemp("tiny") / "run"
    train_charlm(load_config(None, TINY_OVERRIDES), run_dir, verbose=0)
    return run_dir


def require_corpus(name):
    """Skips the calling test, with a reason, unless TEXTRNN_DATA_DIR holds `name/`."""
    mirror = os.environ.get("TEXTRNN_DATA_DIR")
    if not mirror or not (Path(mirror) / name).is_dir():
        pytest.skip(f"TEXTRNN_DATA_DIR does not hold {name}/ (point it at e.g. ../shared/data)")


TINY_SENTIMENT = REPO / "data" / "samples" / "tiny_sentiment"
TINY_SENTIMENT_OVERRIDES = [
    f"data.dataset='{TINY_SENTIMENT}'",
    "data.batch_size=8",
    "data.num_buckets=3",
    "model.units=16",
    "model.embedding_dim=16",
    "model.attention_units=8",
    "model.dropout=0.0",
    "train.epochs=8",
    "train.learning_rate=0.02",
    "train.early_stopping_patience=0",
]


@pytest.fixture(scope="session")
def tiny_sentiment_run(tmp_path_factory):
    """A finished sentiment run: an attention-pooled BiLSTM on the tiny sentiment sample."""
    from textrnn.sentiment.train import train_sentiment
    from textrnn.training.config import load_config

    run_dir = tmp_path_factory.mktemp("tiny_sentiment") / "run"
    cfg = load_config(None, TINY_SENTIMENT_OVERRIDES, task="sentiment")
    train_sentiment(cfg, run_dir, verbose=0)
    return run_dir


def kill_after_first_epoch_then_resume(args, run_dir, total_epochs, timeout=240):
    """Runs `textrnn train ...` (`args`) in a subprocess, SIGKILLs it once `progress.json`
    records a finished epoch (before the last), checks nothing claims more, then runs it
    again with `--resume` to the end. Returns the epoch count at the kill."""
    import json
    import signal
    import subprocess
    import time

    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    progress = run_dir / "progress.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if progress.exists() and json.loads(progress.read_text() or "{}").get("epochs", 0) >= 1:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "training finished before it could be killed; make it longer"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = json.loads(progress.read_text())["epochs"]
    assert 1 <= killed_at < total_epochs
    assert not (run_dir / "results.json").exists()
    done = subprocess.run(
        args + ["--resume"], check=False, cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(progress.read_text())["epochs"] == total_epochs
    return killed_at


TINY_PARALLEL = REPO / "data" / "samples" / "tiny_parallel"
TINY_TRANSLATION_OVERRIDES = [
    f"data.dataset='{TINY_PARALLEL}'",
    "data.source_vocab_size=300",
    "data.target_vocab_size=300",
    "data.batch_size=16",
    "data.num_buckets=2",
    "model.embedding_dim=32",
    "model.encoder_units=32",
    "model.decoder_units=64",
    "model.attention_units=32",
    "model.dropout=0.0",
    "train.epochs=12",
    "train.learning_rate=0.02",
    "train.warmup_steps=0",
    "train.label_smoothing=0.0",
    "train.early_stopping_patience=0",
]


@pytest.fixture(scope="session")
def tiny_translation_run(tmp_path_factory):
    """A finished translation run: a small Luong-attention LSTM on the tiny de-en sample."""
    from textrnn.training.config import load_config
    from textrnn.translation.train import train_translation

    run_dir = tmp_path_factory.mktemp("tiny_translation") / "run"
    cfg = load_config(None, TINY_TRANSLATION_OVERRIDES, task="translate")
    train_translation(cfg, run_dir, verbose=0)
    return run_dir
