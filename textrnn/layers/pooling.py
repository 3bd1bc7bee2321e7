"""`SequencePooling`: one vector from a masked sequence of RNN outputs (last, mean, max, attention)."""

from __future__ import annotations

import keras
import tensorflow as tf

from textrnn.layers.attention import masked_softmax
from textrnn.layers.projection import last_axis_matmul

POOLING_MODES = ("last", "mean", "max", "attention")


@keras.saving.register_keras_serializable(package="textrnn")
class SequencePooling(keras.layers.Layer):
    """Pools right-padded RNN outputs `[batch, time, dim]` into `[batch, dim]`, ignoring padding.

    Modes:
        - `"last"`: the output at the last real position. With `bidirectional=True` the
          features are `[forward, backward]` halves (as `keras.layers.Bidirectional` concatenates
          them) and the result is the forward half at the last real position joined with the
          backward half at position 0: exactly the final states of a masked bidirectional RNN.
        - `"mean"`: the mean over real positions.
        - `"max"`: the per-feature maximum over real positions (padding never wins, even when
          every real value is negative).
        - `"attention"`: additive self-attention, `a = softmax_t(v^T tanh(W h_t + b))` over real
          positions (padded positions get exactly 0 weight), output `sum_t a_t h_t`.

    A row with no real position pools to zeros (and all-zero attention weights), never NaN.

    Args:
        mode: one of `POOLING_MODES`.
        bidirectional: whether `sequences` are concatenated forward/backward outputs; only
            changes `"last"`, which then needs an even `dim`.
        attention_units: hidden size of the `"attention"` score network (unused otherwise).
        **kwargs: standard Keras layer arguments (`name`, `dtype`, ...).

    Call arguments:
        sequences: float `[batch, time, dim]`.
        mask: boolean `[batch, time]`, right-padded (True then False). When omitted, the Keras
            mask attached to `sequences` (e.g. by an `Embedding(mask_zero=True)` upstream) is
            used; it is an error if there is none.
        return_weights: also return the attention weights (attention mode only).

    Returns:
        pooled `[batch, dim]`, or `(pooled, weights [batch, time])` with `return_weights=True`.

    Raises:
        ValueError: for an unknown `mode`, a non-positive `attention_units`, an odd `dim` with
            bidirectional `"last"`, a missing mask, or `return_weights=True` outside
            attention mode.
        TypeError: if `bidirectional` is not a bool.

    Example:
        >>> pooling = SequencePooling("attention", attention_units=16)
        >>> mask = tf.sequence_mask([5, 2], 5)
        >>> pooled, weights = pooling(tf.random.normal([2, 5, 8]), mask, return_weights=True)
        >>> pooled.shape, weights.shape
        (TensorShape([2, 8]), TensorShape([2, 5]))
    """

    def __init__(self, mode="attention", bidirectional=False, attention_units=128, **kwargs):
        super().__init__(**kwargs)
        if mode not in POOLING_MODES:
            raise ValueError(f"Expected `mode` in {POOLING_MODES}. Received: mode={mode!r}")
        if not isinstance(bidirectional, bool):
            raise TypeError(
                f"Expected a bool for `bidirectional`. Received: bidirectional={bidirectional!r}"
            )
        if (
            not isinstance(attention_units, int)
            or isinstance(attention_units, bool)
            or attention_units <= 0
        ):
            raise ValueError(
                "Expected a positive integer for `attention_units`. "
                f"Received: attention_units={attention_units!r}"
            )
        self.mode = mode
        self.bidirectional = bidirectional
        self.attention_units = attention_units
        # The output has no time axis: drop the incoming mask (without Keras warning that
        # this layer "destroys" it).
        self.supports_masking = True

    def build(self, sequences_shape):
        if len(sequences_shape) != 3:
            raise ValueError(
                "`SequencePooling` expects sequences `[batch, time, dim]`. "
                f"Received: sequences.shape={tuple(sequences_shape)}"
            )
        dim = sequences_shape[-1]
        if self.mode == "last" and self.bidirectional and dim % 2:
            raise ValueError(
                "Bidirectional `last` pooling splits the features into equal forward and "
                f"backward halves, so `dim` must be even. Received: dim={dim}"
            )
        if self.mode == "attention":
            units = self.attention_units
            self.kernel = self.add_weight(
                shape=(dim, units), initializer="glorot_uniform", name="kernel"
            )
            self.bias = self.add_weight(shape=(units,), initializer="zeros", name="bias")
            self.score_vector = self.add_weight(
                shape=(units,), initializer="glorot_uniform", name="score_vector"
            )

    def call(self, sequences, mask=None, return_weights=False):
        if return_weights and self.mode != "attention":
            raise ValueError(
                "Only attention pooling has weights; use `return_weights=False` with "
                f"mode={self.mode!r}."
            )
        if mask is None:
            raise ValueError(
                "`SequencePooling` needs a mask `[batch, time]` (True = real position): pass "
                "`mask=` or feed sequences that carry a Keras mask. Received: mask=None"
            )
        mask = tf.cast(mask, tf.bool)
        values = tf.cast(sequences, tf.float32)
        has_real = tf.reduce_any(mask, axis=1, keepdims=True)  # [B, 1]
        weights = None
        if self.mode == "last":
            lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
            last = tf.gather(values, tf.maximum(lengths - 1, 0), axis=1, batch_dims=1)
            if self.bidirectional:
                half = values.shape[-1] // 2
                last = tf.concat([last[:, :half], values[:, 0, half:]], axis=-1)
            pooled = last
        elif self.mode == "mean":
            total = tf.reduce_sum(tf.where(mask[:, :, None], values, 0.0), axis=1)
            count = tf.reduce_sum(tf.cast(mask, tf.float32), axis=1, keepdims=True)
            pooled = total / tf.maximum(count, 1.0)
        elif self.mode == "max":
            pooled = tf.reduce_max(tf.where(mask[:, :, None], values, float("-inf")), axis=1)
        else:
            hidden = tf.tanh(
                last_axis_matmul(values, tf.cast(self.kernel, tf.float32))
                + tf.cast(self.bias, tf.float32)
            )
            scores = tf.einsum("btu,u->bt", hidden, tf.cast(self.score_vector, tf.float32))
            weights = masked_softmax(scores, mask)
            pooled = tf.einsum("bt,btd->bd", weights, tf.where(mask[:, :, None], values, 0.0))
        pooled = tf.cast(tf.where(has_real, pooled, 0.0), self.compute_dtype)
        return (pooled, weights) if return_weights else pooled

    def compute_mask(self, inputs, previous_mask):
        return None

    def get_config(self):
        config = super().get_config()
        config.update(
            mode=self.mode,
            bidirectional=self.bidirectional,
            attention_units=self.attention_units,
        )
        return config
