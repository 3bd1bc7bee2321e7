"""Attention over encoder memory: `BahdanauAttention` (additive) and `LuongAttention`.

Both layers share one calling convention so a translator can swap them:
`keys = layer.precompute(memory)` once per source sentence, then
`context, weights = layer(query, memory, keys, mask=source_mask)` for one decoder step
(`query [B, Dq]`) or for all target steps at once (`query [B, T, Dq]`).

Scores and the softmax are computed in float32. Masked source positions get exactly
0.0 weight, and a row whose mask is all False gets all-zero weights and a zero context.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from textrnn.layers.checks import positive_int
from textrnn.layers.projection import last_axis_matmul

LUONG_SCORES = ("dot", "general", "concat")

# Finite (not -inf) so that a fully masked row gives a uniform softmax, then zeros, never NaN.
_MASKED_SCORE = -1e9


def masked_softmax(scores, mask=None):
    """Softmax over the last axis in float32 that gives masked positions exactly 0.0.

    Args:
        scores: float `[..., S]`.
        mask: optional boolean, broadcastable to `scores`; True marks a real position.

    Returns:
        float32 weights like `scores`: each row sums to 1 over its real positions, masked
        positions are exactly 0.0, and a row with no real position is all zeros.

    Example:
        >>> masked_softmax([[1.0, 1.0, 5.0]], [[True, True, False]]).numpy()
        array([[0.5, 0.5, 0. ]], dtype=float32)
    """
    scores = tf.cast(scores, tf.float32)
    if mask is None:
        return tf.nn.softmax(scores, axis=-1)
    mask = tf.broadcast_to(tf.cast(mask, tf.bool), tf.shape(scores))
    weights = tf.nn.softmax(tf.where(mask, scores, _MASKED_SCORE), axis=-1)
    return tf.where(mask, weights, 0.0)


class _MemoryAttention(keras.layers.Layer):
    """Shared `call()` (query rank, masking, softmax, context) and the additive score."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # Keras warns that a layer "destroys the mask" when it receives `mask=` without
        # supporting masking; `compute_mask` below says the outputs carry no mask.
        self.supports_masking = True
        self.memory_kernel = None
        self.score_vector = None
        self.query_kernel = None

    def _scores(self, query, keys):
        """float32 query `[B, T, Dq]`, keys `[B, S, K]` -> float32 scores `[B, T, S]`."""
        raise NotImplementedError

    def _keys_dim(self, query_dim, memory_dim):
        raise NotImplementedError

    def _check_shapes(self, query_shape, memory_shape, keys_shape):
        if len(query_shape) not in (2, 3):
            raise ValueError(
                f"`{type(self).__name__}` expects a query of rank 2 `[batch, dim]` or 3 "
                f"`[batch, time, dim]`. Received: query.shape={tuple(query_shape)}"
            )
        if len(memory_shape) != 3:
            raise ValueError(
                f"`{type(self).__name__}` expects memory `[batch, source, dim]`. "
                f"Received: memory.shape={tuple(memory_shape)}"
            )
        expected = self._keys_dim(query_shape[-1], memory_shape[-1])
        if keys_shape is not None and keys_shape[-1] != expected:
            raise ValueError(
                f"`keys` must be the output of `precompute(memory)`, with last dimension "
                f"{expected}. Received: keys.shape={tuple(keys_shape)}"
            )

    # Additive score `v^T tanh(W_q q + W_m m_s)`, shared by Bahdanau and Luong "concat".

    def _build_additive_memory(self, memory_dim):
        if self.memory_kernel is not None:
            if self.memory_kernel.shape[0] != memory_dim:
                raise ValueError(
                    f"`{self.name}` was built for memory size {self.memory_kernel.shape[0]}. "
                    f"Received: memory size {memory_dim}"
                )
            return
        # Always created in this order (memory kernel, score vector, query kernel), whether
        # `precompute` or `build` comes first, so saved weights line up on reload.
        self.memory_kernel = self.add_weight(
            shape=(memory_dim, self.units), initializer="glorot_uniform", name="memory_kernel"
        )
        self.score_vector = self.add_weight(
            shape=(self.units,), initializer="glorot_uniform", name="score_vector"
        )

    def _build_additive(self, query_shape, memory_shape, keys_shape):
        self._check_shapes(query_shape, memory_shape, keys_shape)
        self._build_additive_memory(memory_shape[-1])
        self.query_kernel = self.add_weight(
            shape=(query_shape[-1], self.units), initializer="glorot_uniform", name="query_kernel"
        )

    def _additive_keys(self, memory):
        memory = tf.cast(memory, self.compute_dtype)
        self._build_additive_memory(memory.shape[-1])
        return last_axis_matmul(memory, tf.cast(self.memory_kernel, memory.dtype))

    def _additive_scores(self, query, keys):
        projected = last_axis_matmul(query, tf.cast(self.query_kernel, tf.float32))  # [B, T, U]
        hidden = tf.tanh(projected[:, :, None, :] + keys[:, None, :, :])  # [B, T, S, U]
        return tf.einsum("btsu,u->bts", hidden, tf.cast(self.score_vector, tf.float32))

    def call(self, query, memory, keys=None, mask=None):
        if keys is None:
            keys = self.precompute(memory)
        single_step = query.shape.rank == 2
        query = tf.cast(query, tf.float32)
        if single_step:
            query = query[:, None, :]
        scores = self._scores(query, tf.cast(keys, tf.float32))  # [B, T, S]
        values = tf.cast(memory, tf.float32)
        if mask is not None:
            mask = tf.cast(mask, tf.bool)
            # Zero padded memory too, so garbage there cannot leak through 0 * inf.
            values = tf.where(mask[:, :, None], values, 0.0)
            mask = mask[:, None, :]  # [B, 1, S], broadcast over target steps
        weights = masked_softmax(scores, mask)
        context = tf.einsum("bts,bsd->btd", weights, values)
        if single_step:
            context, weights = context[:, 0], weights[:, 0]
        return tf.cast(context, self.compute_dtype), weights

    def compute_mask(self, inputs, previous_mask):
        # `previous_mask` is the *source* mask; neither output is indexed by source position.
        return None


@keras.saving.register_keras_serializable(package="textrnn")
class BahdanauAttention(_MemoryAttention):
    """Additive attention: `score(q, m_s) = v^T tanh(W_q q + W_m m_s)` (Bahdanau et al. 2015).

    Args:
        units: size of the hidden layer of the score network (columns of `W_q`, `W_m`).
        **kwargs: standard Keras layer arguments (`name`, `dtype`, ...).

    Call arguments:
        query: decoder state(s), `[batch, query_dim]` or `[batch, time, query_dim]`.
        memory: encoder outputs `[batch, source, memory_dim]`.
        keys: `precompute(memory)`; computed here when omitted.
        mask: optional boolean `[batch, source]`, True for real source tokens.

    Returns:
        `(context, weights)`: context `[batch, memory_dim]` or `[batch, time, memory_dim]`
        (the weighted sum of `memory`), and float32 weights `[batch, source]` or
        `[batch, time, source]` (a softmax over real source positions, exactly 0.0 elsewhere).

    Raises:
        ValueError: if `units` is not a positive integer, or on incompatible shapes.

    Example:
        >>> attention = BahdanauAttention(units=16)
        >>> memory = tf.random.normal([2, 7, 12])
        >>> keys = attention.precompute(memory)
        >>> context, weights = attention(tf.random.normal([2, 5, 8]), memory, keys)
        >>> context.shape, weights.shape
        (TensorShape([2, 5, 12]), TensorShape([2, 5, 7]))
    """

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        positive_int("units", units)
        self.units = units

    def _keys_dim(self, query_dim, memory_dim):
        return self.units

    def build(self, query_shape, memory_shape, keys_shape=None):
        self._build_additive(query_shape, memory_shape, keys_shape)

    def precompute(self, memory):
        """`W_m memory`: `[batch, source, memory_dim]` -> keys `[batch, source, units]`."""
        return self._additive_keys(memory)

    def _scores(self, query, keys):
        return self._additive_scores(query, keys)

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units)
        return config


@keras.saving.register_keras_serializable(package="textrnn")
class LuongAttention(_MemoryAttention):
    """Multiplicative attention (Luong et al. 2015) with the `dot`, `general` or `concat` score.

    - `"dot"`: `q . m_s`; needs `query_dim == memory_dim`; no weights, keys are the memory.
    - `"general"`: `q . (W_a m_s)`, `W_a` maps memory_dim -> query_dim, no bias.
    - `"concat"`: `v^T tanh(W [q; m_s])`, computed as `v^T tanh(W_q q + W_m m_s)`.

    Args:
        score: `"dot"`, `"general"` or `"concat"`.
        units: hidden size of the `"concat"` score network (required there, ignored otherwise).
        **kwargs: standard Keras layer arguments (`name`, `dtype`, ...).

    Call arguments:
        query, memory, keys, mask: as for `BahdanauAttention`.

    Returns:
        `(context, weights)`, as for `BahdanauAttention`.

    Raises:
        ValueError: for an unknown `score`, a `"concat"` score without positive `units`,
            `"dot"` with different query and memory sizes, or `precompute` on an unbuilt
            `"general"` layer (its `W_a` needs the query size: call `build()` first).

    Example:
        >>> attention = LuongAttention("general")
        >>> attention.build((None, 8), (None, None, 12))
        >>> memory = tf.random.normal([2, 7, 12])
        >>> keys = attention.precompute(memory)
        >>> context, weights = attention(tf.random.normal([2, 8]), memory, keys)
        >>> context.shape, weights.shape
        (TensorShape([2, 12]), TensorShape([2, 7]))
    """

    def __init__(self, score="general", units=None, **kwargs):
        super().__init__(**kwargs)
        if score not in LUONG_SCORES:
            raise ValueError(f"Expected `score` in {LUONG_SCORES}. Received: score={score!r}")
        if score == "concat" or units is not None:
            positive_int("units", units)
        self.score = score
        self.units = units
        self.kernel = None

    def _keys_dim(self, query_dim, memory_dim):
        return {"dot": memory_dim, "general": query_dim, "concat": self.units}[self.score]

    def build(self, query_shape, memory_shape, keys_shape=None):
        if self.score == "concat":
            self._build_additive(query_shape, memory_shape, keys_shape)
            return
        self._check_shapes(query_shape, memory_shape, keys_shape)
        query_dim, memory_dim = query_shape[-1], memory_shape[-1]
        if self.score == "dot" and query_dim != memory_dim:
            raise ValueError(
                "The `dot` score needs equal query and memory sizes; use `general` or `concat` "
                f"otherwise. Received: query_dim={query_dim}, memory_dim={memory_dim}"
            )
        if self.score == "general":
            self.kernel = self.add_weight(
                shape=(memory_dim, query_dim), initializer="glorot_uniform", name="kernel"
            )

    def precompute(self, memory):
        """Keys: `memory` (dot), `W_a memory` (general) or `W_m memory` (concat)."""
        if self.score == "concat":
            return self._additive_keys(memory)
        memory = tf.cast(memory, self.compute_dtype)
        if self.score == "dot":
            return memory
        if self.kernel is None:
            raise ValueError(
                f"`{self.name}` (score='general') cannot precompute keys before it is built: "
                "`W_a` maps the memory size to the query size, which `precompute` does not "
                "see. Call `build(query_shape, memory_shape)` first."
            )
        return last_axis_matmul(memory, tf.cast(self.kernel, memory.dtype))

    def _scores(self, query, keys):
        if self.score == "concat":
            return self._additive_scores(query, keys)
        return tf.einsum("btd,bsd->bts", query, keys)

    def get_config(self):
        config = super().get_config()
        config.update(score=self.score, units=self.units)
        return config
