"""The translator export: a SavedModel of the `Translator` (both tokenisers, the model and
the decoding loops), source strings in, translations out.

`WordpieceTokenizeWithOffsets` (tensorflow-text, which
TensorFlow Serving's model server links; a Python client must `import tensorflow_text`
before loading) and core ops otherwise:
- `serving_default(sources)`: the recipe's `[translate]` decoding.
- `greedy(sources, max_length)`.
- `beam(sources, beam_width, n_best, alpha, max_length)`.
- `sample(sources, max_length, temperature, top_k, top_p, seed)`.
Outputs: `translation`, `score`, `normalized_score`, `n_best` `[batch, n]`,
`n_best_scores`, `source_tokens`, `target_tokens` and `attention` `[batch, target,
source]` of the best hypothesis (enough to draw a heatmap on the client).
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from textrnn.export.savedmodel import check_empty, write_savedmodel
from textrnn.training.task_registry import ExportOptions
from textrnn.translation.translator import make_translator


def export_translator(translator, export_dir) -> Path:
    """Writes a SavedModel of a `Translator` (tokenisers, model and decoding loops).

    Args:
        translator: a `textrnn.translation.translator.Translator`; its `defaults` (the recipe's
            `[translate]` section) become `serving_default`.
        export_dir: output directory (must not exist yet, or be empty).

    Returns:
        The export directory.

    Example:
        >>> export_translator(translator, "exports/de-en")
        >>> import tensorflow_text  # the WordPiece op
        >>> served = tf.saved_model.load("exports/de-en")
        >>> served.signatures["serving_default"](sources=tf.constant(["Ein Hund."]))
    """
    export_dir = check_empty(export_dir)
    d = translator.defaults

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="sources")])
    def serving_default(sources):
        if d.strategy == "greedy":
            return translator.greedy(sources, d.max_length)
        if d.strategy == "sample":
            return translator.sample(
                sources, d.max_length, float(d.temperature), d.top_k, float(d.top_p), d.seed
            )
        return translator.beam(sources, d.beam_width, d.n_best, float(d.alpha), d.max_length)

    translator.serving_default = serving_default
    signatures = {
        "serving_default": serving_default.get_concrete_function(),
        "greedy": translator.greedy.get_concrete_function(),
        "beam": translator.beam.get_concrete_function(),
        "sample": translator.sample.get_concrete_function(),
    }
    info = {
        "task": "translate",
        "serving_default": d.__dict__,
        "xla": translator.jit_compile,
        "xla_capacity": translator.capacity if translator.jit_compile else None,
        "tensorflow_text_ops": sorted(
            set(translator.source_tokenizer.tf_text_ops + translator.target_tokenizer.tf_text_ops)
        ),
    }
    return write_savedmodel(translator, export_dir, signatures, info)


def export_run(model, tokenizers, cfg, export_dir, options: ExportOptions | None = None) -> Path:
    """Exports a finished translation run (what `textrnn export` calls through the task
    registry); `options.jit_compile` XLA-compiles the decoding loops."""
    options = options or ExportOptions()
    translator = make_translator(model, tokenizers, cfg, jit_compile=options.jit_compile)
    return export_translator(translator, export_dir)
