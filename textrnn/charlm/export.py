"""The character-LM export: a SavedModel of the model, its tokeniser and the decoding
loop (`CharGenerator`), strings in, strings out.

Core ops only (stock TF Serving runs it). Signatures:
- `serving_default(prompts)`: sampling with the recipe's `[generate]` defaults.
- `greedy(prompts, max_length)`.
- `sample(prompts, max_length, temperature, top_k, top_p, seed, repetition_penalty)`.
- `beam(prompts, max_length)`: beam search with the width chosen at export time.
Outputs: `text` (prompt + continuation), `continuation`, `ids`, `score` (sum log-prob).

The export carries TensorFlow Serving's warm-up file (one short request per signature)
and the metadata asset (`textrnn.export.metadata`).

Every signature checks its inputs against the export's `ExportLimits` (recorded under
`limits` in `textrnn_export.json`) and answers a bad one with `InvalidArgument` naming
the input, the value and the allowed range; see `CharGenerator` for the rules.

Generating models export without XLA by default. With `jit_compile=True` (command line:
`textrnn export --xla`) the decoding loop is XLA-compiled inside the SavedModel (the
string ops around it are not): faster, but the server must run XLA (TensorFlow Serving:
`--xla_cpu_compilation_enabled=true`), and one call generates at most `capacity` tokens.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from textrnn.charlm.config import GenerateConfig
from textrnn.charlm.generator import DEFAULT_CAPACITY, CharGenerator, input_domains
from textrnn.export import input_checks as checks
from textrnn.export.limits import ExportLimits
from textrnn.export.savedmodel import check_empty, write_savedmodel
from textrnn.training.config import to_dict
from textrnn.training.task_registry import ExportOptions

# TensorFlow Serving's warm-up request of every signature: one short prompt, a few
# characters (each signature's first call then costs nothing on the first client).
WARMUP_VALUES = {
    "prompts": "The ",
    "max_length": 4,
    "temperature": 1.0,
    "top_k": 0,
    "top_p": 1.0,
    "seed": 0,
    "repetition_penalty": 1.0,
}


def warmup_values(limits: ExportLimits) -> dict:
    """`WARMUP_VALUES` within `limits` (a warm-up request that fails fails the load)."""
    values = dict(WARMUP_VALUES)
    values["prompts"] = values["prompts"][: limits.max_input_bytes]
    values["max_length"] = min(values["max_length"], limits.max_new_tokens)
    return values


def export_charlm(
    model,
    tokenizer,
    export_dir,
    generate_config: GenerateConfig | None = None,
    beam_width: int = 5,
    jit_compile: bool = False,
    capacity: int = DEFAULT_CAPACITY,
    limits: ExportLimits | None = None,
    recipe: dict | None = None,
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
        limits: the caps every call is checked against (`ExportLimits()` by default).
        recipe: the run's resolved recipe, recorded in the metadata asset.

    Returns:
        The export directory.

    Raises:
        ValueError: `beam_width` or a `generate_config` value outside `limits` or its
            domain (e.g. `max_length` above `limits.max_new_tokens`).

    Example:
        >>> export_charlm(model, tokenizer, "exports/charlm")
        >>> served = tf.saved_model.load("exports/charlm")
        >>> served.signatures["greedy"](prompts=tf.constant(["ROMEO:"]), max_length=tf.constant(50))
    """
    export_dir = check_empty(export_dir)
    gen_cfg = generate_config or GenerateConfig()
    limits = limits or ExportLimits()
    domains = input_domains(limits)
    for name, integer in (
        ("max_length", True),
        ("temperature", False),
        ("top_k", True),
        ("top_p", False),
    ):
        checks.check_value(
            f"generate.{name}", getattr(gen_cfg, name), domains[name], integer=integer
        )
    generator = CharGenerator(
        model,
        tokenizer,
        beam_width=beam_width,
        jit_compile=jit_compile,
        capacity=capacity,
        limits=limits,
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
        "limits": limits.to_dict(),
    }
    return write_savedmodel(
        generator,
        export_dir,
        signatures,
        info,
        warmup_values=warmup_values(limits),
        metadata={"vocabulary_sizes": {"characters": tokenizer.vocab_size}, "recipe": recipe},
    )


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
        limits=options.limits,
        recipe=to_dict(cfg) if cfg else None,
    )
