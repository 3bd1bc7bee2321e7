"""Training sentiment classifiers, exactly resumable after a kill.

Besides the common files (see `textrnn.training.runs`), a sentiment run directory holds
`vocab.txt` and `vocab.txt.json` (the tokeniser learned from the training split) and
`results.json` with the classification report of every split, training time and
throughput, and the padding fraction of the training batches with and without length
bucketing.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from textrnn.data import pipelines
from textrnn.sentiment.config import SentimentConfig, SentimentDataConfig
from textrnn.sentiment.data import load_sentiment_splits
from textrnn.sentiment.encoding import encode_split
from textrnn.sentiment.evaluate import evaluate_split
from textrnn.sentiment.model import SentimentClassifier
from textrnn.text.loading import load_tokenizer
from textrnn.text.vocabulary import VocabularyError
from textrnn.text.word_tokenizer import WordTokenizer
from textrnn.text.wordpiece_tokenizer import WordPieceTokenizer
from textrnn.training import atomic, runs
from textrnn.training import config as config_lib
from textrnn.training.determinism import seed_everything
from textrnn.training.loop import fit_resumable
from textrnn.training.optimizers import make_optimizer
from textrnn.training.progress import TrainingProgress, describe_training
from textrnn.training.threads import apply_thread_settings

VOCAB_FILE = "vocab.txt"
TOKENIZERS = {"word": WordTokenizer, "wordpiece": WordPieceTokenizer}
MONITOR = "val_accuracy"


def learn_tokenizer(data: SentimentDataConfig, texts):
    """Learns the recipe's tokeniser from the training texts."""
    if data.tokenizer == "word":
        return WordTokenizer.learn(
            texts, data.vocab_size, lowercase=data.lowercase, min_count=data.min_count
        )
    if data.tokenizer == "wordpiece":
        return WordPieceTokenizer.learn(texts, data.vocab_size, lowercase=data.lowercase)
    raise config_lib.ConfigError(
        f"`data.tokenizer` must be one of {sorted(TOKENIZERS)}. Received: {data.tokenizer!r}"
    )


def make_dataset(rows, labels, batch_size, boundaries, *, shuffle_seed=None):
    """Padded `(ids, label)` batches, length-bucketed when `boundaries` is non-empty."""
    padded, lengths = pipelines.pad_rows(rows)
    ds = tf.data.Dataset.from_tensor_slices((padded, lengths, np.asarray(labels, np.int32)))
    ds = ds.map(lambda ids, n, label: (ids[:n], label))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(rows), seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = pipelines.batch_by_length(ds, 0, boundaries, batch_size)
    return ds.prefetch(tf.data.AUTOTUNE)


def load_sentiment_run(run_dir):
    """Loads `(model, tokenizer, config)` from a sentiment run directory.

    Raises:
        FileNotFoundError: the model or vocabulary file is missing.
        VocabularyError: the vocabulary does not match the model.
    """
    run_dir = Path(run_dir)
    vocab_path = run_dir / VOCAB_FILE
    if not vocab_path.is_file():
        raise FileNotFoundError(f"{vocab_path} not found: is {run_dir} a finished training run?")
    tokenizer = load_tokenizer(vocab_path)
    model_path = run_dir / runs.MODEL_FILE
    model = runs.load_keras_model(model_path)
    if model.vocab_size != tokenizer.vocabulary_size():
        raise VocabularyError(
            f"Vocabulary {vocab_path} has {tokenizer.vocabulary_size()} ids but the model in "
            f"{model_path} was trained with {model.vocab_size}: they do not belong together."
        )
    return model, tokenizer, runs.read_run_config(run_dir)


def build_classifier(cfg: SentimentConfig, vocab_size: int) -> SentimentClassifier:
    model = SentimentClassifier(
        vocab_size=vocab_size,
        num_classes=len(cfg.data.label_names),
        **config_lib.to_dict(cfg.model),
    )
    model.build()
    return model


def train_sentiment(cfg: SentimentConfig, run_dir, *, resume=False, verbose=1):
    """Trains a `SentimentClassifier` from a recipe; safe to kill and `resume`.

    Args:
        cfg: a `SentimentConfig` (see `textrnn.training.config.load_config`).
        run_dir: the run directory (layout in `textrnn.training.runs`).
        resume: continue the run in `run_dir` exactly, from its newest good checkpoint.
        verbose: Keras progress-bar verbosity.

    Returns:
        The results dict also written to `run_dir/results.json`: a classification report
        per split, training time, tokens/s and padding fractions.

    Example:
        >>> cfg = load_config("models/sentiment-sst2/config.toml", ["train.epochs=1"])
        >>> train_sentiment(cfg, "runs/sst2")["validation"]["accuracy"]
    """
    run_dir = Path(run_dir)
    apply_thread_settings(cfg.train)  # before TensorFlow runs its first op
    data = cfg.data
    if len(data.label_names) < 2:
        raise config_lib.ConfigError(
            f"`data.label_names` needs at least two names. Received: {data.label_names!r}"
        )
    splits = load_sentiment_splits(
        data.dataset,
        validation_fraction=data.validation_fraction,
        seed=data.split_seed,
        num_classes=len(data.label_names),
        validation_split=data.validation_split,
    )  # fails before touching run_dir
    runs.prepare_run_dir(run_dir, cfg, resume)
    seed_everything(cfg.train)
    vocab_path = run_dir / VOCAB_FILE
    if resume and vocab_path.exists():
        tokenizer = load_tokenizer(vocab_path)
    else:
        tokenizer = learn_tokenizer(data, splits["train"].texts)
        tokenizer.save(vocab_path)

    train_rows = encode_split(tokenizer, splits["train"].texts, data)
    val_rows = encode_split(tokenizer, splits["validation"].texts, data)
    lengths = np.array([len(r) for r in train_rows])
    boundaries = pipelines.length_boundaries(lengths, max(data.num_buckets, 1))
    steps = pipelines.count_bucketed_batches(lengths, boundaries, data.batch_size)
    train_ds = make_dataset(
        train_rows,
        splits["train"].labels,
        data.batch_size,
        boundaries,
        shuffle_seed=cfg.train.seed,
    )
    val_ds = make_dataset(val_rows, splits["validation"].labels, data.batch_size, boundaries)
    # Repeated, with the exact batch count of one pass: an epoch is one pass unless the
    # recipe sets `steps_per_epoch`.
    train_ds = train_ds.repeat()
    steps_per_epoch = cfg.train.steps_per_epoch or steps
    total_steps = cfg.train.epochs * steps_per_epoch
    val_steps = pipelines.count_bucketed_batches(
        [len(r) for r in val_rows], boundaries, data.batch_size
    )

    model = build_classifier(cfg, tokenizer.vocabulary_size())
    model.compile(
        optimizer=make_optimizer(cfg.train, total_steps),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    progress = TrainingProgress(
        run_dir / runs.PROGRESS_FILE,
        float(lengths.sum()) / steps,
        cfg.train.max_minutes,
        monitor=MONITOR,
        mode="max",
    )
    fit_resumable(
        model,
        train_ds,
        val_ds,
        cfg.train,
        run_dir,
        progress,
        steps_per_epoch=steps_per_epoch,
        validation_steps=val_steps,
        verbose=verbose,
    )
    atomic.save_model(model, run_dir / runs.MODEL_FILE)

    results = {name: evaluate_split(model, tokenizer, cfg, split) for name, split in splits.items()}
    plain = make_dataset(train_rows, splits["train"].labels, data.batch_size, [], shuffle_seed=0)
    results.update(
        **progress.summary(),
        steps_per_epoch=steps_per_epoch,
        parameters=int(model.count_params()),
        vocabulary_size=tokenizer.vocabulary_size(),
        train_examples=len(train_rows),
        train_tokens_per_epoch=int(lengths.sum()),
        bucket_boundaries=boundaries,
        padding_fraction_bucketed=round(pipelines.padding_fraction(train_ds.take(steps)), 4)
        if boundaries
        else None,
        padding_fraction_unbucketed=round(pipelines.padding_fraction(plain), 4),
        config=config_lib.to_dict(cfg),
    )
    atomic.write_text(run_dir / runs.RESULTS_FILE, json.dumps(results, indent=2))
    return results


def summarize_results(results: dict) -> str:
    """A few lines on a finished sentiment run, for the terminal: accuracy and macro F1
    of every split, then the training.

    Example:
        >>> print(summarize_results(train_sentiment(cfg, "runs/sst2")))
        validation: accuracy 84.52%, macro F1 0.8450 (872 texts)
        ...
    """
    lines = [
        f"{name}: accuracy {report['accuracy']:.2%}, macro F1 {report['macro']['f1']:.4f} "
        f"({report['num_examples']:,} texts)"
        for name in ("train", "validation", "test")
        if (report := results.get(name))
    ]
    return "\n".join([*lines, describe_training(results, "tokens")])
