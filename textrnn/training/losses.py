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
        return smoothed_token_cross_entropy(y_true, y_pred, self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def smoothed_token_cross_entropy(labels, logits, label_smoothing):
    """Per-token `(1 - e) * -log p(y) + e * mean_v(-log p(v))`, from logits.

    Written as `-log p(y) + e * (z_y - mean_v z)` (the same quantity: `-log p(v) =
    logsumexp(z) - z_v`), over TensorFlow's fused sparse softmax cross-entropy kernel,
    which returns the softmax gradient with the loss; the gradient with respect to the
    logits is `softmax(z) - onehot(y) + e * (onehot(y) - 1 / V)`, written by hand. On 2 CPU
    cores this takes half the time of a `log_softmax` with autodiff for the Multi30k
    translator's `[64, 32, 6000]` logits (memory passes over the logits, not arithmetic,
    are the cost).

    Args:
        labels: int ids `[...]`, each in `[0, V)` (an id outside is an error).
        logits: float `[..., V]`.
        label_smoothing: `e` in [0, 1).

    Returns:
        float32 `[...]`: the loss of each token.

    Example:
        >>> loss = smoothed_token_cross_entropy(tf.constant([1]), tf.zeros([1, 4]), 0.1)
        >>> round(float(loss[0]), 4)  # log 4
        1.3863
    """
    logits = tf.cast(logits, tf.float32)
    labels = tf.cast(labels, tf.int32)
    leading = tf.shape(labels)
    vocab = tf.shape(logits)[-1]
    flat_logits = tf.reshape(logits, [-1, vocab])
    flat_labels = tf.reshape(labels, [-1])
    e = float(label_smoothing)

    @tf.custom_gradient
    def per_token(flat_logits):
        nll, backprop = tf.raw_ops.SparseSoftmaxCrossEntropyWithLogits(
            features=flat_logits, labels=flat_labels
        )
        if not e:
            loss = nll
        else:
            label_logits = tf.gather(flat_logits, flat_labels, batch_dims=1)
            loss = nll + e * (label_logits - tf.reduce_mean(flat_logits, -1))

        def grad(upstream):
            if not e:
                return upstream[:, None] * backprop
            # `e * onehot(y)` joins at the N label positions only: a scatter, not a pass.
            rows = tf.range(tf.shape(flat_labels)[0])
            dense = upstream[:, None] * (backprop - e / tf.cast(vocab, tf.float32))
            at_labels = tf.stack([rows, flat_labels], 1)
            return tf.tensor_scatter_nd_add(dense, at_labels, e * upstream)

        return loss, grad

    return tf.reshape(per_token(flat_logits), leading)
