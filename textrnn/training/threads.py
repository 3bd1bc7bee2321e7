"""TensorFlow's op thread pools, as a recipe's `[train]` section sets them.

TensorFlow runs the work of each op on an intra-op pool (by default one thread per
core) and independent ops side by side on an inter-op pool. A recurrent training step
is mostly a chain of small ops (one step's GEMM and gate arithmetic after another):
split over every core, each small op spends much of its time handing work out and
waiting. With one thread per op and two ops at a time (`intra_op_threads = 1`,
`inter_op_threads = 2`), the independent ops of a step (textrnn's fast layers compute
their units in shards, and a bidirectional layer's two directions are independent) run
on a core each instead. Measured on the 2-core machine (`benchmarks/fast_layers.py`,
README "Fast recurrent layers"): faster for the character models and the SST-2
classifier, slower for the Multi30k translator, whose decoder is one chain of small
steps. Which is best depends on the model and the machine, so the default keeps
TensorFlow's choice and the recipes that gain say so.

The pools are the process's, and TensorFlow fixes them when it runs its first op: set
them before anything else (`textrnn train` does; in a notebook, before building a model).

Example:
    >>> from textrnn.training.config import load_config
    >>> cfg = load_config(None, ["train.intra_op_threads=1", "train.inter_op_threads=2"])
    >>> apply_thread_settings(cfg.train)  # in a fresh process
    True
"""

from __future__ import annotations

import warnings

import tensorflow as tf


def apply_thread_settings(train) -> bool:
    """Sets TensorFlow's intra-op and inter-op pools as `train` asks (0 keeps
    TensorFlow's choice, which also honours `TF_NUM_INTRAOP_THREADS` /
    `TF_NUM_INTEROP_THREADS`).

    Args:
        train: the recipe's `[train]` section (`TrainConfig`): `intra_op_threads`,
            `inter_op_threads`.

    Returns:
        True when the pools are as asked; False, with a `RuntimeWarning` saying what
        runs instead, when TensorFlow had already started with other pools (training
        goes on with them: only its speed differs).
    """
    wanted = {"intra_op": train.intra_op_threads, "inter_op": train.inter_op_threads}
    current = current_thread_settings()
    if all(n == 0 or current[pool] == n for pool, n in wanted.items()):
        return True
    try:
        if wanted["intra_op"]:
            tf.config.threading.set_intra_op_parallelism_threads(wanted["intra_op"])
        if wanted["inter_op"]:
            tf.config.threading.set_inter_op_parallelism_threads(wanted["inter_op"])
    except RuntimeError:
        warnings.warn(
            f"train.intra_op_threads = {wanted['intra_op']} and train.inter_op_threads = "
            f"{wanted['inter_op']} not applied: TensorFlow had already started in this "
            f"process (pools {current_thread_settings()}, 0 = its default). Training "
            "goes on with those; set the threads before TensorFlow runs anything.",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
    return True


def current_thread_settings() -> dict:
    """`{"intra_op": n, "inter_op": m}`, TensorFlow's pool sizes (0: its default).

    Example:
        >>> sorted(current_thread_settings())
        ['inter_op', 'intra_op']
    """
    return {
        "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
    }
