"""`StopOnNonFiniteLoss`: training stops at the first batch whose loss is not finite, with
an error that says where, before anything of that epoch is saved."""

from __future__ import annotations

import math

import keras


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Raises `NonFiniteLossError` at the end of the first batch whose loss is not finite.

    Keras's own `TerminateOnNaN` only sets `stop_training`, so the run would end normally
    and save a model of NaN weights. Raising here ends training before that step is
    checkpointed and before the epoch's best weights and history row are written: the run
    directory keeps what the last good checkpoint holds.

    Example:
        >>> model.fit(ds, epochs=3, callbacks=[StopOnNonFiniteLoss()])
        NonFiniteLossError: the training loss became nan at step 17 (epoch 1, batch 17) ...
    """

    def __init__(self):
        super().__init__()
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):
            return
        step = int(self.model.optimizer.iterations.numpy())
        raise NonFiniteLossError(
            f"the training loss became {float(loss)} at step {step} (epoch {self._epoch + 1}, "
            f"batch {batch + 1}); training stopped before saving this step (the last good "
            "checkpoint is kept). "
            "A smaller train.learning_rate or train.clipnorm usually helps."
        )
