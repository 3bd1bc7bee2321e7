"""Numerics options of a run: mixed precision and an XLA-compiled train step.

`[train] precision` is a Keras dtype policy:

- `"float32"` (the default): everything in float32.
- `"mixed_bfloat16"`: layers compute in bfloat16 and keep float32 variables. bfloat16
  has float32's exponent range, so no loss scaling is needed. Pays where the hardware has
  bfloat16 units (recent GPUs, TPUs, CPUs with AMX / AVX512-BF16).
- `"mixed_float16"`: layers compute in float16 with float32 variables; the optimizer is
  wrapped in Keras's `LossScaleOptimizer` (dynamic loss scaling, so small gradients do
  not underflow; a step whose scaled gradients overflow is skipped and the scale
  halved). Meant for GPUs with float16 tensor cores.

Under both mixed policies the layers named `"logits"` (the output projection of every
task) compute in float32, and losses are computed in float32 (Keras casts predictions to
the loss's float32 dtype), so the softmax and its cross-entropy never run in 16 bits.
A saved `model.keras` loads computing in float32: its layers take the global policy
when they are rebuilt.

`[train] jit_compile = true` compiles the train step with XLA (`tf.function(
jit_compile=True)`), textrnn's fast layers switched to operations XLA compiles first
(`textrnn.layers.fast_recurrent.xla_compatible`). Keras refuses XLA for models with layers
that do not support it and under op determinism; the run then stops with an error rather
than quietly running without it.

The policy must be in force when the model is built: `precision_policy(train)` (used by
`textrnn.training.launch.training_scope`) sets it and restores the previous one after.
"""

from __future__ import annotations

import contextlib

import keras

from textrnn.layers.fast_recurrent import xla_compatible
from textrnn.training import config as config_lib

LOGITS_LAYER = "logits"


@contextlib.contextmanager
def precision_policy(train):
    """Sets Keras's global dtype policy to `train.precision` for the duration.

    Args:
        train: the recipe's `[train]` section.

    Example:
        >>> with precision_policy(cfg.train):
        ...     model = build_charlm(cfg, vocab_size)   # computes in bfloat16
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(train.precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def wrap_optimizer(optimizer, train):
    """The optimizer a run with `train.precision` trains with.

    Under `mixed_float16`: `optimizer` inside a `keras.optimizers.LossScaleOptimizer`
    (dynamic loss scaling); the wrapper exposes the inner optimizer's `gradient_norm`,
    which records the unscaled gradients. Otherwise: `optimizer` itself.

    Args:
        optimizer: a Keras 3 optimizer.
        train: the recipe's `[train]` section.

    Returns:
        The optimizer to compile the model with.

    Example:
        >>> wrap_optimizer(keras.optimizers.Adam(), cfg.train)
    """
    if train.precision != "mixed_float16":
        return optimizer
    wrapped = keras.optimizers.LossScaleOptimizer(optimizer)
    if hasattr(optimizer, "gradient_norm"):
        object.__setattr__(wrapped, "gradient_norm", optimizer.gradient_norm)
    return wrapped


def prepare_model(model, train) -> None:
    """Checks that `model` was built under `train.precision`, puts its `"logits"` layers
    in float32 and sets XLA compilation of its train step as `train.jit_compile` says.

    Raises:
        ConfigError: the model computes in another dtype policy than the recipe's (it was
            built outside `precision_policy`), or XLA was asked for and Keras refuses it
            for this model.
    """
    policy = model.dtype_policy.name
    if policy != train.precision:
        raise config_lib.ConfigError(
            f"`train.precision = {train.precision!r}`, but the model was built with the "
            f"dtype policy {policy!r}. Build it under "
            "`textrnn.training.launch.training_scope(cfg.train)` (as `textrnn train` does)."
        )
    if train.precision != "float32":
        for layer in model._flatten_layers(include_self=False):
            if layer.name == LOGITS_LAYER:
                layer.dtype_policy = "float32"
    if train.jit_compile:
        xla_compatible(model)  # FastLSTM: its gate gradient in plain ops
    model.jit_compile = train.jit_compile
    if train.jit_compile and not model.jit_compile:
        raise config_lib.ConfigError(
            "`train.jit_compile = true`, but Keras refuses XLA for this model (a layer "
            "without XLA support, or op determinism is on). Set train.jit_compile = false."
        )
