"""`AveragedWeights`: validation and the best weights on the optimizer's moving average of
the weights, training steps and the training checkpoints on the raw ones."""

from __future__ import annotations

import keras


class AveragedWeights:
    """Lets validation, the best-weights checkpoint and the saved model use the optimizer's
    moving average of the weights (`use_ema=True`), while training steps and the training
    checkpoints keep the raw weights.

    Keras's `SwapEMAWeights(swap_on_epoch=True)` leaves the average in the model during
    every callback after it, so an epoch-end checkpoint would hold the two sets of weights
    swapped and `--resume` would continue from the average. Here two callbacks bracket
    the checkpoint instead: `put_in` (first in the list) swaps the average in when
    validation begins (or, without a validation set, at the end of the epoch), and it
    stays there through the best-weights file; `take_out` (before the epoch-end
    checkpoint) swaps the raw weights back. The loop validates only at the end of an
    epoch, so no training step ever sees the average.

    Args:
        model: a model compiled with an optimizer built with `use_ema=True`.
    """

    def __init__(self, model):
        self.model = model
        self.average_in_model = False
        self.put_in = keras.callbacks.LambdaCallback(
            on_test_begin=lambda logs: self._set(True),
            on_epoch_end=lambda epoch, logs: self._set(True),
        )
        self.take_out = keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: self._set(False)
        )

    def _set(self, average: bool):
        if average == self.average_in_model:
            return
        optimizer = self.model.optimizer
        # Under mixed_float16 the averages live in the LossScaleOptimizer's inner one.
        optimizer = getattr(optimizer, "inner_optimizer", optimizer)
        averages = getattr(optimizer, "_model_variables_moving_average", None)
        if not averages:
            raise ValueError("AveragedWeights needs an optimizer built with use_ema=True.")
        for variable, average_variable in zip(optimizer._trainable_variables, averages):
            raw = variable.numpy()
            variable.assign(average_variable)
            average_variable.assign(raw)
        self.average_in_model = average
