import csv
import json
import sys

import numpy as np
import pytest
from conftest import REPO, TINY_OVERRIDES, kill_after_first_epoch_then_resume

from textrnn.char_tokenizer import VocabularyError
from textrnn.charlm_training import train_charlm
from textrnn.config import load_config
from textrnn.training import RunDirError, load_run


def test_tiny_run_writes_everything_and_learns(tiny_run):
    for name in (
        "config.toml",
        "vocab.txt",
        "model.keras",
        "history.csv",
        "progress.json",
        "results.json",
        "backup",
        "logs",
    ):
        assert (tiny_run / name).exists(), name
    results = json.loads((tiny_run / "results.json").read_text())
    assert results["train_tokens"] == 2 * 3 * 8 * 32
    assert results["val_loss_windows"] < np.log(results["config"]["model"]["units"] * 10)
    assert abs(results["val_bpc_windows"] - results["val_loss_windows"] / np.log(2)) < 1e-3
    model, tokenizer, cfg = load_run(tiny_run)
    assert model.vocab_size == tokenizer.vocab_size and cfg.model.units == 32


def test_stream_windows_train(tmp_path):
    cfg = load_config(None, TINY_OVERRIDES + ["data.windows=stream", "train.epochs=1"])
    results = train_charlm(cfg, tmp_path / "run", verbose=0)
    assert np.isfinite(results["val_loss_sequential"])


def test_run_dir_guards(tiny_run, tmp_path):
    cfg = load_config(tiny_run / "config.toml")
    with pytest.raises(RunDirError, match="--resume"):
        train_charlm(cfg, tiny_run, verbose=0)
    other = load_config(tiny_run / "config.toml", ["train.learning_rate=0.5"])
    with pytest.raises(RunDirError, match="differs"):
        train_charlm(other, tiny_run, resume=True, verbose=0)
    with pytest.raises(RunDirError, match="holds no run"):
        train_charlm(cfg, tmp_path / "empty", resume=True, verbose=0)


def test_corpus_too_short_for_a_window(tmp_path):
    corpus = tmp_path / "short.txt"
    corpus.write_text("tiny text " * 20, encoding="utf-8")
    cfg = load_config(None, [f"data.dataset='{corpus}'", "data.seq_len=64"])
    with pytest.raises(ValueError, match="fewer than one window"):
        train_charlm(cfg, tmp_path / "run", verbose=0)


def test_vocabulary_that_does_not_match_the_model(tiny_run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    with open(copy / "vocab.txt", "a", encoding="utf-8") as f:
        f.write("U+2603\n")
    with pytest.raises(VocabularyError, match="do not belong together"):
        load_run(copy)
    (copy / "model.keras").write_bytes(b"not a zip")
    with pytest.raises((ValueError, VocabularyError)):
        load_run(copy)


def test_resume_after_kill(tmp_path):
    run_dir = tmp_path / "run"
    args = [
        sys.executable,
        "-m",
        "textrnn.cli",
        "train",
        "charlm",
        "--quiet",
        "--recipe",
        str(REPO / "models/charlm-shakespeare/config.toml"),
        "--run-dir",
        str(run_dir),
    ]
    overrides = [o for o in TINY_OVERRIDES if not o.startswith("train.")] + [
        "train.epochs=3",
        "train.steps_per_epoch=150",
        "train.validation_windows=8",
        "train.early_stopping_patience=0",
        "train.max_minutes=0",
    ]
    for o in overrides:
        args += ["--set", o]
    kill_after_first_epoch_then_resume(args, run_dir, total_epochs=3)
    with open(run_dir / "history.csv") as f:
        epochs = [int(row["epoch"]) for row in csv.DictReader(f)]
    assert epochs[-1] == 2 and set(range(3)) <= set(epochs)
    results = json.loads((run_dir / "results.json").read_text())
    assert results["train_tokens"] >= 3 * 150 * 8 * 32 * 0.99
