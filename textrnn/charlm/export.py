"""The character-LM export: a SavedModel of the model, its tokeniser and the decoding
loop (`CharGenerator`), strings in, strings out.

Core ops only (stock TF Serving runs it). Signatures:
- `serving_default(prompts)`: sampling with the recipe's `[generate]` defaults.
- `greedy(prompts, max_length)`.
- `sample(prompts, max_length, temperature, top_k, top_p, seed, repetition_penalty)`.
- `beam(prompts, max_length)`: beam search with the width chosen at export time.
Outputs: `text` (prompt + continuation), `continuation`, `ids`, `score` (sum log-prob).

Generating models export without XLA by default. With `jit_compile=True` (command line:
`textrnn export --xla`) the decoding loop is XLA-compiled inside the SavedModel (the
string ops around it are not): faster, but the server must run XLA (TensorFlow Serving:
`--xla_cpu_compilation_enabled=true`), and one call generates at most `capacity` tokens.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from textrnn.charlm.config import GenerateConfig
from textrnn.charlm.generator import DEFAULT_CAPACITY, CharGenerator
from textrnn.export.savedmodel import check_empty, write_savedmodel
from textrnn.training.task_registry import ExportOptions


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
    export_dir = check_empty(export_dir)
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
    return write_savedmodel(generator, export_dir, signatures, info)


def export_run(model, tokenizer, cfg, export_dir, options: ExportOptions | None = None) -> Path:
    """Exports a finished character-LM run (what `textrnn export` calls through the task
    registry), with the recipe's `[generate]` defaults as `serving_default`."""
    options = options or ExportOptions()
    return export_charlm(
        model,
        tokenizer,
        export_dir,
        cfg.generate if cfg else None,
        beam_width=options.beam_width,
        jit_compile=options.jit_compile,
    )
