"""Token-weighted language-model metrics: perplexity and bits per character.

Both accumulate the *total* negative log-likelihood and the *total* number of scored
tokens over everything seen since the last reset, and report exp(total / count) or
total / count / ln 2. They never average per-batch perplexities, which is biased.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from textrnn.text.special_tokens import PAD_ID


class _TokenNLL(keras.metrics.Metric):
    """Sum of token negative log-likelihoods and token count; targets equal to
    `ignore_id` (padding by default) are not scored."""

    def __init__(self, name, ignore_id=PAD_ID, dtype="float32", **kwargs):
        super().__init__(name=name, dtype=dtype, **kwargs)
        self.ignore_id = ignore_id
        self.total_nll = self.add_variable(shape=(), initializer="zeros", name="total_nll")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = tf.cast(y_true, tf.int32)
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=y_true, logits=tf.cast(y_pred, tf.float32)
        )
        weight = tf.ones_like(nll)
        if self.ignore_id is not None:
            weight = weight * tf.cast(y_true != self.ignore_id, tf.float32)
        if sample_weight is not None:
            weight = weight * tf.cast(tf.broadcast_to(sample_weight, tf.shape(nll)), tf.float32)
        self.total_nll.assign_add(tf.reduce_sum(nll * weight))
        self.count.assign_add(tf.reduce_sum(weight))

    def mean_nll(self):
        return tf.math.divide_no_nan(self.total_nll, self.count)

    def get_config(self):
        return {**super().get_config(), "ignore_id": self.ignore_id}


@keras.saving.register_keras_serializable(package="textrnn")
class Perplexity(_TokenNLL):
    """exp(total NLL / total tokens), from logits.

    Example:
        >>> m = Perplexity()
        >>> m.update_state([[1, 2]], tf.zeros([1, 2, 4]))  # uniform over 4 ids
        >>> float(m.result())
        4.0
    """

    def __init__(self, name="perplexity", **kwargs):
        super().__init__(name=name, **kwargs)

    def result(self):
        return tf.exp(self.mean_nll())


@keras.saving.register_keras_serializable(package="textrnn")
class BitsPerCharacter(_TokenNLL):
    """Total NLL / total tokens / ln 2, from logits (bits per character).

    Example:
        >>> m = BitsPerCharacter()
        >>> m.update_state([[1, 2]], tf.zeros([1, 2, 4]))
        >>> float(m.result())
        2.0
    """

    def __init__(self, name="bits_per_char", **kwargs):
        super().__init__(name=name, **kwargs)

    def result(self):
        return self.mean_nll() / math.log(2.0)
