"""Scoring a sentiment classifier: predicted labels of a split and its classification
report (accuracy, precision, recall, F1, confusion matrix)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from textrnn.data import pipelines
from textrnn.metrics.classification import classification_report, format_report
from textrnn.sentiment.data import load_sentiment_splits
from textrnn.sentiment.encoding import encode_split
from textrnn.training.task_registry import EvaluateOptions, Evaluation


def predict_labels(model, rows, batch_size=256) -> tuple[np.ndarray, np.ndarray]:
    """Predicted label ids and probabilities for pre-encoded rows, in their order.

    Rows are scored in length order (little padding) and put back in place.
    """
    order = np.argsort([len(r) for r in rows], kind="stable")
    probs = np.zeros([len(rows), model.num_classes], np.float32)

    # One trace for every batch shape: rows come in growing lengths.
    score = tf.function(
        lambda ids: tf.nn.softmax(model(ids, training=False)),
        input_signature=[tf.TensorSpec([None, None], tf.int32)],
        autograph=False,
    )

    for start in range(0, len(rows), batch_size):
        chunk = order[start : start + batch_size]
        ids, _ = pipelines.pad_rows([rows[i] for i in chunk])
        probs[chunk] = score(tf.constant(ids)).numpy()
    return probs.argmax(-1), probs


def evaluate_split(model, tokenizer, cfg, split) -> dict:
    """Classification report (accuracy, precision, recall, F1, confusion matrix) of a split.

    Args:
        model: a `SentimentClassifier`.
        tokenizer: its tokeniser.
        cfg: the run's `SentimentConfig` (text policy and label names).
        split: a `LabeledTexts` (texts and labels).
    """
    rows = encode_split(tokenizer, split.texts, cfg.data)
    predicted, _ = predict_labels(model, rows)
    return classification_report(split.labels, predicted, label_names=cfg.data.label_names)


def evaluate_run(model, tokenizer, cfg, options: EvaluateOptions | None = None) -> Evaluation:
    """The run's classification report on `options.split` (default: validation and test).

    What `textrnn evaluate` calls for a sentiment run (through the task registry).

    Returns:
        An `Evaluation` whose figures map each split name to its report.

    Raises:
        ValueError: the dataset has no split called `options.split`.

    Example:
        >>> evaluate_run(*load_run("runs/sst2"), EvaluateOptions(split="test")).figures
    """
    options = options or EvaluateOptions()
    splits = load_sentiment_splits(
        cfg.data.dataset,
        validation_fraction=cfg.data.validation_fraction,
        seed=cfg.data.split_seed,
        num_classes=len(cfg.data.label_names),
        validation_split=cfg.data.validation_split,
    )
    split = options.split
    names = [split] if split else [n for n in ("validation", "test") if n in splits]
    unknown = [n for n in names if n not in splits]
    if unknown:
        raise ValueError(f"Unknown split {unknown[0]!r}; this dataset has {sorted(splits)}.")
    figures, report = {}, []
    for name in names:
        figures[name] = evaluate_split(model, tokenizer, cfg, splits[name])
        report.append(f"== {cfg.data.dataset} {name}\n{format_report(figures[name])}\n")
    return Evaluation(figures, "\n".join(report))
