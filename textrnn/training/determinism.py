"""Seeds, and TensorFlow's op determinism when the recipe asks for it.

`keras.utils.set_random_seed` seeds Python's `random` (which picks the initial seed of
every Keras `SeedGenerator`, e.g. each dropout layer's), NumPy and TensorFlow's global
seed (the op-level seeds of `tf.data` shuffles and random windows derive from it).
`train.deterministic = true` (or `textrnn train --deterministic`) also calls
`tf.config.experimental.enable_op_determinism()`: every op then runs its deterministic
kernel (or raises if it has none), so two runs with the same seed give bit-identical
weights whatever the thread scheduling. It lasts for the rest of the process.
"""

from __future__ import annotations

import keras
import tensorflow as tf


def seed_everything(train) -> None:
    """Seeds every generator from `train.seed`; op determinism if `train.deterministic`.

    Args:
        train: the recipe's `[train]` section (`TrainConfig`).

    Example:
        >>> seed_everything(load_config(None, ["train.deterministic=true"]).train)
        >>> tf.config.experimental.is_op_determinism_enabled()
        True
    """
    keras.utils.set_random_seed(train.seed)
    if getattr(train, "deterministic", False):
        tf.config.experimental.enable_op_determinism()
