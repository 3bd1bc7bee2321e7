"""Losses shared by the tasks' training."""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="textrnn")
class SmoothedCrossEntropy(keras.losses.Loss):
    """Token cross-entropy from logits with label smoothing, averaged over weighted tokens.

    `loss = (1 - e) * -log p(y) + e * mean_v(-log p(v))` per token; with sample weights
    (1 for real tokens, 0 for padding) the mean is over real tokens only.

    Args:
        label_smoothing: `e` in [0, 1).
    """

    def __init__(self, label_smoothing=0.0, name="smoothed_cross_entropy", **kwargs):
        kwargs.setdefault("reduction", "mean_with_sample_weight")
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        log_probs = tf.nn.log_softmax(tf.cast(y_pred, tf.float32))
        nll = -tf.gather(log_probs, tf.cast(y_true, tf.int32), batch_dims=2)
        if not self.label_smoothing:
            return nll
        uniform = -tf.reduce_mean(log_probs, axis=-1)
        return (1.0 - self.label_smoothing) * nll + self.label_smoothing * uniform

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}
