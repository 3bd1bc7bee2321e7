"""The optimizer every task trains with: Adam(W), global-norm clipping, the recipe's
learning-rate schedule and, optionally, a moving average of the weights."""

from __future__ import annotations

import keras

from textrnn.training import config as config_lib
from textrnn.training.gradient_norms import track_gradient_norm
from textrnn.training.numerics import wrap_optimizer


def learning_rate(train: config_lib.TrainConfig, total_steps: int):
    """The recipe's learning rate: constant, or linear warm-up then cosine decay to
    `min_learning_rate` over `total_steps`."""
    if train.lr_schedule == "constant":
        return train.learning_rate
    if train.lr_schedule != "cosine":
        raise config_lib.ConfigError(
            f"`train.lr_schedule` must be 'cosine' or 'constant'. Received: {train.lr_schedule!r}"
        )
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if train.warmup_steps else train.learning_rate,
        decay_steps=max(total_steps - train.warmup_steps, 1),
        alpha=train.min_learning_rate / train.learning_rate,
        warmup_target=train.learning_rate if train.warmup_steps else None,
        warmup_steps=train.warmup_steps,
    )


def make_optimizer(train: config_lib.TrainConfig, total_steps: int | None = None):
    """Adam(W) with gradient clipping by global norm and the recipe's LR schedule, keeping
    a moving average of the weights when `train.ema_momentum` is set, recording the
    global gradient norm of each step (`optimizer.gradient_norm`), with dynamic loss
    scaling under `train.precision = "mixed_float16"`.

    Args:
        train: the recipe's `[train]` section.
        total_steps: optimizer steps of the whole run (default `epochs * steps_per_epoch`).
    """
    total = total_steps if total_steps is not None else train.epochs * train.steps_per_epoch
    kwargs = {
        "learning_rate": learning_rate(train, total),
        "global_clipnorm": train.clipnorm or None,
    }
    if train.ema_momentum:
        kwargs.update(use_ema=True, ema_momentum=train.ema_momentum)
    if train.weight_decay:
        optimizer = keras.optimizers.AdamW(weight_decay=train.weight_decay, **kwargs)
    else:
        optimizer = keras.optimizers.Adam(**kwargs)
    # Every step's gradient norm, for `gradient_norms.csv` (see `training.gradient_norms`);
    # under mixed_float16, inside a LossScaleOptimizer (see `training.numerics`).
    return wrap_optimizer(track_gradient_norm(optimizer), train)
