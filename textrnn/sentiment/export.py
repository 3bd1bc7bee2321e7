"""The sentiment export: a SavedModel of the predictor (tokeniser, text policy,
classifier) whose signatures take raw strings.

- `serving_default(texts)`: `label_ids`, `labels` (names), `probabilities`.
- `explain(texts)` (attention pooling): the same plus `tokens` and attention `weights`.

Core ops only with a word vocabulary; `WordpieceTokenizeWithOffsets` (tensorflow-text)
with a WordPiece one.
"""

from __future__ import annotations

from pathlib import Path

from textrnn.export.savedmodel import check_empty, write_savedmodel
from textrnn.sentiment.predictor import make_predictor
from textrnn.training.task_registry import ExportOptions


def export_sentiment(predictor, export_dir) -> Path:
    """Writes a SavedModel of a `SentimentPredictor` (tokeniser, text policy, classifier).

    Args:
        predictor: a `textrnn.sentiment.predictor.SentimentPredictor`.
        export_dir: output directory (must not exist yet, or be empty).

    Returns:
        The export directory.

    Example:
        >>> export_sentiment(predictor, "exports/sst2")
        >>> served = tf.saved_model.load("exports/sst2")
        >>> served.signatures["serving_default"](texts=tf.constant(["a fine film"]))["labels"]
    """
    export_dir = check_empty(export_dir)
    signatures = {"serving_default": predictor.predict.get_concrete_function()}
    if predictor.model.pooling == "attention":
        signatures["explain"] = predictor.explain.get_concrete_function()
    info = {
        "task": "sentiment",
        "label_names": list(predictor.label_names),
        "max_length": predictor.max_length,
        "truncation": predictor.truncation,
        "tensorflow_text_ops": list(predictor.tokenizer.tf_text_ops),
    }
    return write_savedmodel(predictor, export_dir, signatures, info)


def export_run(model, tokenizer, cfg, export_dir, options: ExportOptions | None = None) -> Path:
    """Exports a finished sentiment run (what `textrnn export` calls through the task
    registry); `options` has nothing for this task."""
    options = options or ExportOptions()
    return export_sentiment(make_predictor(model, tokenizer, cfg), export_dir)
