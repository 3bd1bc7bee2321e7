"""`FastGRU`: Keras's `GRU` (`reset_after=True`) with its own CPU sequence computation."""

from __future__ import annotations

import keras
import tensorflow as tf

from textrnn.layers.fast_recurrent import (
    FastRecurrentMixin,
    chunked_backward,
    gated_cell_blocker,
    join_shards,
    keep_keras_class_name,
    shard_gates,
    shard_projections,
    split_shards,
    unit_shards,
    zeros_if_none,
)

# Keras's GRU gates `z, r, h`, kept in that order.
ZRH = (0, 1, 2)


def gru_recurrence(
    x, kernel, bias, h0, recurrent_kernel, recurrent_bias, mask=None, differentiable=True
):
    """The GRU (`reset_after=True`) over a sequence, input projection included, with a
    hand-written gradient.

    Keras's equations, gates `z, r, h`: `xw = x_t @ W + b_in`, `inner = h @ U + b_rec`,
    `z, r = sigmoid(xw[:2u] + inner[:2u])`, `hh = tanh(xw[2u:] + r * inner[2u:])`,
    `h = z * h + (1 - z) * hh`; a masked step keeps `h`.

    Args:
        x: `[time, batch, in]`, the time-major inputs.
        kernel: `[in, 3 * units]`; bias: `[3 * units]`, the input bias.
        h0: `[batch, units]`.
        recurrent_kernel: `[units, 3 * units]`.
        recurrent_bias: `[3 * units]` (zeros for a layer without bias).
        mask: optional bool `[time, batch, 1]`.
        differentiable: True: the hand-written gradient (`tf.custom_gradient`) for
            training; False: the forward loop alone, plain ops (TensorFlow's autodiff if it
            is differentiated), which keeps SavedModels free of custom gradients.

    Returns:
        `hs [time, batch, units]`: the carried hidden state after every step.

    Example:
        >>> gru_recurrence(tf.zeros([5, 2, 3]), tf.zeros([3, 6]), tf.zeros([6]),
        ...                tf.zeros([2, 2]), tf.zeros([2, 6]), tf.zeros([6])).shape
        TensorShape([5, 2, 2])
    """
    sizes = unit_shards(recurrent_kernel.shape[0])
    kernel, bias, u, b = (
        shard_gates(w, ZRH, sizes) for w in (kernel, bias, recurrent_kernel, recurrent_bias)
    )
    if not differentiable:
        return _forward(x, kernel, bias, h0, u, b, mask, sizes, save=False)[0]
    masks = () if mask is None else (mask,)

    @tf.custom_gradient
    def recurrence(x, kernel, bias, h0, u, b, *masks):
        m = masks[0] if masks else None
        hs, saved = _forward(x, kernel, bias, h0, u, b, m, sizes)

        def grad(dhs):
            grads = _backward(zeros_if_none(dhs, hs), x, kernel, h0, u, m, hs, saved, sizes)
            return (*grads, *(None for _ in masks))

        return hs, grad

    return recurrence(x, kernel, bias, h0, u, b, *masks)


def _forward(x, kernel, bias, h0, u, b, mask, sizes, save=True):
    """The input projection and forward loop, weights in `shard_gates` layout. Returns
    `hs` and the per-step tensors the backward reads (three `TensorArray`s per shard:
    `[z, r]`, `(h @ U + b)` of the candidate, the candidate)."""
    steps = tf.shape(x)[0]
    widths = [3 * n for n in sizes]
    xws = shard_projections(x, kernel, bias, widths)
    us, bs = split_shards(u, widths), split_shards(b, widths)

    def array(width):
        return tf.TensorArray(x.dtype, size=steps, element_shape=[h0.shape[0], width])

    def body(t, h, hs, *carry):
        h_shards, saved = carry[: len(sizes)], carry[len(sizes) :]
        m = None if mask is None else mask[t]
        h_news, kept = [], []
        for xw, u_s, b_s, h_s, n in zip(xws, us, bs, h_shards, sizes, strict=True):
            x_t = xw[t]
            inner = tf.matmul(h, u_s) + b_s
            zr = tf.sigmoid(x_t[:, : 2 * n] + inner[:, : 2 * n])
            z = zr[:, :n]
            rh = inner[:, 2 * n :]
            hh = tf.tanh(x_t[:, 2 * n :] + zr[:, n:] * rh)
            h_new = z * h_s + (1 - z) * hh
            h_news.append(h_new if m is None else tf.where(m, h_new, h_s))
            kept += [zr, rh, hh]
        h_new = join_shards(h_news)
        if save:
            saved = tuple(a.write(t, v) for a, v in zip(saved, kept, strict=True))
        return (t + 1, h_new, hs.write(t, h_new), *h_news, *saved)

    arrays = tuple(array(w) for n in sizes for w in (2 * n, n, n)[: 3 if save else 0])
    h0s = split_shards(h0, sizes)
    _, _, hs, *carry = tf.while_loop(
        lambda t, *_: t < steps, body, (tf.constant(0), h0, array(h0.shape[1]), *h0s, *arrays)
    )
    return hs.stack(), carry[len(sizes) :]


def _backward(dhs, x, kernel, h0, u, mask, hs, saved, sizes):
    """Gradients of `hs` with respect to `(x, kernel, bias, h0, u, b)`, weights in
    `shard_gates` layout."""
    shards = len(sizes)
    us = split_shards(u, [3 * n for n in sizes])

    def step(t, carry, prev):
        (dh,) = carry
        dh_shards = split_shards(dh, sizes)
        h_prevs = split_shards(prev[t], sizes)
        d_inners, da_hs, parts, through = [], [], [], []
        for s, n in enumerate(sizes):
            gates_ta, inner_h_ta, cand_ta = saved[3 * s : 3 * s + 3]
            zr, rh, hh = gates_ta.read(t), inner_h_ta.read(t), cand_ta.read(t)
            z, r = zr[:, :n], zr[:, n:]
            dh_s = dh_shards[s]
            da_h = dh_s * (1 - z) * (1.0 - hh * hh)
            da_z = dh_s * (h_prevs[s] - hh) * z * (1.0 - z)
            da_r = da_h * rh * r * (1.0 - r)
            d_inner = tf.concat([da_z, da_r, da_h * r], 1)
            d_inners.append(d_inner)
            da_hs.append(da_h)
            parts.append(tf.matmul(d_inner, us[s], transpose_b=True))
            through.append(dh_s * z)
        return (tf.add_n([*parts, join_shards(through)]),), (*d_inners, *da_hs)

    def split_grads(stacked):
        d_inners, da_hs = stacked[:shards], stacked[shards:]
        dxw = [
            tf.concat([d[:, :, : 2 * n], da_h], -1)
            for d, da_h, n in zip(d_inners, da_hs, sizes, strict=True)
        ]
        return join_shards(dxw), join_shards(d_inners)

    (dh0,), dx, dkernel, dbias, du, db = chunked_backward(
        step, (tf.zeros_like(h0),), dhs, mask, x, kernel, h0, hs, split_grads,
        outputs=2 * shards, recurrent_bias=True,
    )  # fmt: skip
    return dx, dkernel, dbias, dh0, du, db


@keras.saving.register_keras_serializable(package="textrnn")
class FastGRU(FastRecurrentMixin, keras.layers.GRU):
    """`keras.layers.GRU` with textrnn's CPU sequence computation; a drop-in replacement.

    Same arguments, weights (`kernel`, `recurrent_kernel`, `bias` of shape `[2, 3u]`,
    gate order `z, r, h`), `.cell`, config and call as `keras.layers.GRU`; files saved with
    either load into the other. The fast path (see `textrnn.layers.fast_recurrent`) needs
    `reset_after=True` (Keras's default), `activation="tanh"`,
    `recurrent_activation="sigmoid"`, no cuDNN (on a GPU Keras's cuDNN kernel runs), no
    `unroll`, no recurrent dropout while training, float32/float64; otherwise Keras's loop
    runs. `use_bias=False` is supported.

    Args:
        units: hidden size; every other argument is `keras.layers.GRU`'s.

    Call arguments:
        As `keras.layers.GRU`: `sequences`, `initial_state`, `mask`, `training`.

    Returns:
        As `keras.layers.GRU`.

    Raises:
        ValueError: as `keras.layers.GRU` for invalid arguments.

    Example:
        >>> layer = FastGRU(8, return_sequences=True, return_state=True)
        >>> [t.shape for t in layer(tf.zeros([2, 5, 3]))]
        [TensorShape([2, 5, 8]), TensorShape([2, 8])]
    """

    def _fast_cell_blocker(self):
        if not self.cell.reset_after:
            return "reset_after=False"
        return gated_cell_blocker(self, reset_after=True)

    def _fast_projection(self):
        kernel = tf.convert_to_tensor(self.cell.kernel)
        if not self.cell.use_bias:
            return kernel, None
        return kernel, tf.convert_to_tensor(self.cell.bias)[0]

    def _fast_recurrence(self, x, kernel, bias, initial_state, mask, training):
        u = tf.convert_to_tensor(self.cell.recurrent_kernel)
        if self.cell.use_bias:
            b = tf.convert_to_tensor(self.cell.bias)[1]
        else:
            b = tf.zeros([u.shape[1]], u.dtype)
        hs = gru_recurrence(x, kernel, bias, initial_state[0], u, b, mask, training)
        return hs, [hs[-1]]


keep_keras_class_name(FastGRU, keras.layers.GRU)
