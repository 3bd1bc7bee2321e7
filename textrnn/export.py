"""SavedModel export for every task: raw strings in, raw strings (and numbers) out.

Each export holds the tokeniser(s), the model and, for generating models, the decoding
loop (`tf.while_loop`), so a bare `tf.saved_model.load` runs it in a process that never
imports textrnn. `core_op_report` lists the ops that are not core TensorFlow; the list
goes into `textrnn_export.json` beside `saved_model.pb`.

Character LM (`export_charlm`), core ops only (stock TF Serving runs it):
- `serving_default(prompts)`: sampling with the recipe's `[generate]` defaults.
- `greedy(prompts, max_length)`.
- `sample(prompts, max_length, temperature, top_k, top_p, seed, repetition_penalty)`.
- `beam(prompts, max_length)`: beam search with the width chosen at export time.
Outputs: `text` (prompt + continuation), `continuation`, `ids`, `score` (sum log-prob).

Generating models export without XLA by default. With `jit_compile=True` (command line:
`textrnn export --xla`) the decoding loop is XLA-compiled inside the SavedModel (the
string ops around it are not): faster, but the server must run XLA (TensorFlow Serving:
`--xla_cpu_compilation_enabled=true`), and one call generates at most `capacity` tokens.

Sentiment classifier (`export_sentiment`), core ops only with a word vocabulary
(`WordpieceTokenizeWithOffsets` from tensorflow-text with a WordPiece one):
- `serving_default(texts)`: `label_ids`, `labels` (names), `probabilities`.
- `explain(texts)` (attention pooling): the same plus `tokens` and attention `weights`.

Translator (`export_translator`): `WordpieceTokenizeWithOffsets` (tensorflow-text, which
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

import json
from pathlib import Path

import tensorflow as tf

from textrnn.char_generation import DEFAULT_CAPACITY, CharGenerator
from textrnn.config import GenerateConfig

INFO_FILE = "textrnn_export.json"


def _check_empty(export_dir) -> Path:
    export_dir = Path(export_dir)
    if export_dir.exists() and any(export_dir.iterdir()):
        raise FileExistsError(f"Export directory {export_dir} exists and is not empty.")
    return export_dir


def _save(module, export_dir: Path, signatures: dict, info: dict) -> Path:
    tf.saved_model.save(module, str(export_dir), signatures=signatures)
    info = {
        **info,
        "signatures": sorted(signatures),
        "non_core_ops": sorted(core_op_report(export_dir)),
    }
    (export_dir / INFO_FILE).write_text(json.dumps(info, indent=2))
    return export_dir


def export_charlm(
    model,
    tokenizer,
    export_dir,
    generate_config: GenerateConfig | None = None,
    beam_width: int = 5,
    jit_compile: bool = False,
    capacity: int = DEFAULT_CAPACITY,
) -> Path:
    """Writes a SavedModel of `model` + `tokenizer` + the decoding loop.

    Args:
        model: a `CharLM`.
        tokenizer: its `CharTokenizer`.
        export_dir: output directory (must not exist yet).
        generate_config: defaults for the `serving_default` signature.
        beam_width: beam width of the `beam` signature.
        jit_compile: compile the decoding loops with XLA (see `CharGenerator`). The
            server must then run XLA: TensorFlow Serving needs
            `--xla_cpu_compilation_enabled=true` on CPU.
        capacity: with `jit_compile`, the most characters one call generates.

    Returns:
        The export directory.

    Example:
        >>> export_charlm(model, tokenizer, "exports/charlm")
        >>> served = tf.saved_model.load("exports/charlm")
        >>> served.signatures["greedy"](prompts=tf.constant(["ROMEO:"]), max_length=tf.constant(50))
    """
    export_dir = _check_empty(export_dir)
    gen_cfg = generate_config or GenerateConfig()
    generator = CharGenerator(
        model, tokenizer, beam_width=beam_width, jit_compile=jit_compile, capacity=capacity
    )

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="prompts")])
    def serving_default(prompts):
        return generator.sample(
            prompts,
            tf.constant(gen_cfg.max_length, tf.int32),
            tf.constant(gen_cfg.temperature, tf.float32),
            tf.constant(gen_cfg.top_k, tf.int32),
            tf.constant(gen_cfg.top_p, tf.float32),
            tf.constant(gen_cfg.seed, tf.int32),
            tf.constant(1.0, tf.float32),
        )

    generator.serving_default = serving_default
    signatures = {
        "serving_default": serving_default.get_concrete_function(),
        "greedy": generator.greedy.get_concrete_function(),
        "sample": generator.sample.get_concrete_function(),
        "beam": generator.beam.get_concrete_function(),
    }
    info = {
        "task": "charlm",
        "serving_default": gen_cfg.__dict__,
        "beam_width": beam_width,
        "xla": generator.jit_compile,
        "xla_capacity": generator.capacity if generator.jit_compile else None,
    }
    return _save(generator, export_dir, signatures, info)


def export_sentiment(predictor, export_dir) -> Path:
    """Writes a SavedModel of a `SentimentPredictor` (tokeniser, text policy, classifier).

    Args:
        predictor: a `textrnn.sentiment_prediction.SentimentPredictor`.
        export_dir: output directory (must not exist yet, or be empty).

    Returns:
        The export directory.

    Example:
        >>> export_sentiment(predictor, "exports/sst2")
        >>> served = tf.saved_model.load("exports/sst2")
        >>> served.signatures["serving_default"](texts=tf.constant(["a fine film"]))["labels"]
    """
    export_dir = _check_empty(export_dir)
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
    return _save(predictor, export_dir, signatures, info)


def core_op_report(export_dir) -> set[str]:
    """Op types in a SavedModel's graphs that are not core TensorFlow ops.

    An empty set means stock TensorFlow Serving can run the export.
    """
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((Path(export_dir) / "saved_model.pb").read_bytes())
    ops, functions = set(), set()
    for meta in proto.meta_graphs:
        functions.update(f.signature.name for f in meta.graph_def.library.function)
        ops.update(node.op for node in meta.graph_def.node)
        for function in meta.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    core = set(dir(tf.raw_ops))
    # A node whose op is a library function is a call, not an op.
    return {op for op in ops if op not in core and op not in functions}


def export_translator(translator, export_dir) -> Path:
    """Writes a SavedModel of a `Translator` (tokenisers, model and decoding loops).

    Args:
        translator: a `textrnn.translation.Translator`; its `defaults` (the recipe's
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
    export_dir = _check_empty(export_dir)
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
    return _save(translator, export_dir, signatures, info)
