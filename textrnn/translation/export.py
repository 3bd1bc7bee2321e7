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

The export carries TensorFlow Serving's warm-up file (one short request per signature)
and the metadata asset (`textrnn.export.metadata`).

Every signature checks its inputs against the translator's `ExportLimits` (recorded under
`limits` in `textrnn_export.json`) and answers a bad one with `InvalidArgument` naming
the input, the value and the allowed range; see `Translator` for the rules.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from textrnn.export import input_checks as checks
from textrnn.export.savedmodel import check_empty, write_savedmodel
from textrnn.training.config import to_dict
from textrnn.training.task_registry import ExportOptions
from textrnn.translation.translator import make_translator

# TensorFlow Serving's warm-up request of every signature: one short source, a few tokens.
WARMUP_VALUES = {
    "sources": "Ein Hund.",
    "max_length": 4,
    "beam_width": 2,
    "n_best": 1,
    "alpha": 0.6,
    "temperature": 1.0,
    "top_k": 0,
    "top_p": 1.0,
    "seed": 0,
}


def warmup_values(limits) -> dict:
    """`WARMUP_VALUES` within `limits` (a warm-up request that fails fails the load)."""
    values = dict(WARMUP_VALUES)
    values["sources"] = values["sources"][: limits.max_input_bytes]
    values["beam_width"] = min(values["beam_width"], limits.max_beam_width)
    return values


def export_translator(translator, export_dir, recipe: dict | None = None) -> Path:
    """Writes a SavedModel of a `Translator` (tokenisers, model and decoding loops).

    Args:
        translator: a `textrnn.translation.translator.Translator`; its `defaults` (the recipe's
            `[translate]` section) become `serving_default`, its `limits` the export's caps.
        export_dir: output directory (must not exist yet, or be empty).
        recipe: the run's resolved recipe, recorded in the metadata asset.

    Returns:
        The export directory.

    Raises:
        ValueError: a `[translate]` default outside the translator's limits (e.g.
            `max_length` above `limits.max_new_tokens`).

    Example:
        >>> export_translator(translator, "exports/de-en")
        >>> import tensorflow_text  # the WordPiece op
        >>> served = tf.saved_model.load("exports/de-en")
        >>> served.signatures["serving_default"](sources=tf.constant(["Ein Hund."]))
    """
    export_dir = check_empty(export_dir)
    d = translator.defaults
    domains = translator.domains()
    names = {"greedy": ("max_length",), "sample": ("max_length", "temperature", "top_k", "top_p")}
    for name in names.get(d.strategy, ("max_length", "beam_width", "n_best", "alpha")):
        value = getattr(d, name)
        integer = name in ("max_length", "beam_width", "n_best", "top_k")
        checks.check_value(f"translate.{name}", value, domains[name], integer=integer)

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
        "limits": translator.limits.to_dict(),
        "tensorflow_text_ops": sorted(
            set(translator.source_tokenizer.tf_text_ops + translator.target_tokenizer.tf_text_ops)
        ),
    }
    sizes = {
        "source": translator.model.source_vocab_size,
        "target": translator.model.target_vocab_size,
    }
    return write_savedmodel(
        translator,
        export_dir,
        signatures,
        info,
        warmup_values=warmup_values(translator.limits),
        metadata={"vocabulary_sizes": sizes, "recipe": recipe},
    )


def export_run(model, tokenizers, cfg, export_dir, options: ExportOptions | None = None) -> Path:
    """Exports a finished translation run (what `textrnn export` calls through the task
    registry); `options.jit_compile` XLA-compiles the decoding loops, `options.limits`
    are the caps."""
    options = options or ExportOptions()
    translator = make_translator(
        model, tokenizers, cfg, jit_compile=options.jit_compile, limits=options.limits
    )
    return export_translator(translator, export_dir, recipe=to_dict(cfg) if cfg else None)
