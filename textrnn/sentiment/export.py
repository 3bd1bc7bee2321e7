"""The sentiment export: a SavedModel of the predictor (tokeniser, text policy,
classifier) whose signatures take raw strings.

- `serving_default(texts)`: `label_ids`, `labels` (names), `probabilities`.
- `explain(texts)` (attention pooling): the same plus `tokens` and attention `weights`.

Core ops only with a word vocabulary; `WordpieceTokenizeWithOffsets` (tensorflow-text)
with a WordPiece one. Both signatures check their input against the predictor's
`ExportLimits` (batch size, bytes per text; recorded under `limits` in
`textrnn_export.json`) and answer an empty batch with empty outputs. The export carries
TensorFlow Serving's warm-up file and the metadata asset (`textrnn.export.metadata`).
"""

from __future__ import annotations

from pathlib import Path

from textrnn.export.savedmodel import check_empty, write_savedmodel
from textrnn.sentiment.predictor import make_predictor
from textrnn.training.config import to_dict
from textrnn.training.task_registry import ExportOptions

# TensorFlow Serving's warm-up request of every signature.
WARMUP_VALUES = {"texts": "a fine film"}


def export_sentiment(predictor, export_dir, recipe: dict | None = None) -> Path:
    """Writes a SavedModel of a `SentimentPredictor` (tokeniser, text policy, classifier).

    Args:
        predictor: a `textrnn.sentiment.predictor.SentimentPredictor` (its `limits` are
            the export's caps).
        export_dir: output directory (must not exist yet, or be empty).
        recipe: the run's resolved recipe, recorded in the metadata asset.

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
        "limits": predictor.limits.to_dict(),
    }
    return write_savedmodel(
        predictor,
        export_dir,
        signatures,
        info,
        warmup_values={"texts": WARMUP_VALUES["texts"][: predictor.limits.max_input_bytes]},
        metadata={"vocabulary_sizes": {"words": predictor.model.vocab_size}, "recipe": recipe},
    )


def export_run(model, tokenizer, cfg, export_dir, options: ExportOptions | None = None) -> Path:
    """Exports a finished sentiment run (what `textrnn export` calls through the task
    registry); of `options`, this task reads `limits`."""
    options = options or ExportOptions()
    predictor = make_predictor(model, tokenizer, cfg, limits=options.limits)
    return export_sentiment(predictor, export_dir, recipe=to_dict(cfg) if cfg else None)
