"""`FastGRU`: Keras's `GRU` (`reset_after=True`) with its own CPU sequence computation."""

from __future__ import annotations

import keras
import tensorflow as tf

from textrnn.layers.fast_recurrent import (
    FastRecurrentMixin,
    flat,
    gated_cell_blocker,
    keep_keras_class_name,
    previous_states,
    zeros_if_none,
)


def gru_recurrence(xw, h0, recurrent_kernel, recurrent_bias, mask=None, differentiable=True):
    """The GRU recurrence (`reset_after=True`) after the input projection, with a
    hand-written gradient.

    Gates in Keras's order `z, r, h`: `inner = h @ U + b_rec`,
    `z, r = sigmoid(xw_t[:2u] + inner[:2u])`, `hh = tanh(xw_t[2u:] + r * inner[2u:])`,
    `h = z * h + (1 - z) * hh`; a masked step keeps `h`.

    Args:
        xw: `[time, batch, 3 * units]`, the input projection plus input bias of every step.
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
        >>> gru_recurrence(tf.zeros([5, 2, 6]), tf.zeros([2, 2]), tf.zeros([2, 6]),
        ...                tf.zeros([6])).shape
        TensorShape([5, 2, 2])
    """
    if not differentiable:
        return _forward(xw, h0, recurrent_kernel, recurrent_bias, mask, save=False)[0]
    if mask is None:
        return _gru(xw, h0, recurrent_kernel, recurrent_bias)
    return _gru_masked(xw, h0, recurrent_kernel, recurrent_bias, mask)


def _forward(xw, h0, u, b, mask, save=True):
    units = u.shape[0]
    steps = tf.shape(xw)[0]

    def array(width):
        return tf.TensorArray(xw.dtype, size=steps, element_shape=[h0.shape[0], width])

    def body(t, h, hs, *saved):
        x = xw[t]
        inner = tf.matmul(h, u) + b
        zr = tf.sigmoid(x[:, : 2 * units] + inner[:, : 2 * units])
        z = zr[:, :units]
        rh = inner[:, 2 * units :]
        hh = tf.tanh(x[:, 2 * units :] + zr[:, units:] * rh)
        h_new = z * h + (1 - z) * hh
        if mask is not None:
            h_new = tf.where(mask[t], h_new, h)
        if save:
            gates, inner_h, cand = saved
            saved = (gates.write(t, zr), inner_h.write(t, rh), cand.write(t, hh))
        return (t + 1, h_new, hs.write(t, h_new), *saved)

    arrays = (array(units), array(2 * units), array(units), array(units))[: 4 if save else 1]
    _, _, hs, *saved = tf.while_loop(lambda t, *_: t < steps, body, (tf.constant(0), h0, *arrays))
    return hs.stack(), saved


def _backward(dhs, h0, u, mask, hs, saved):
    """Gradients of `hs` with respect to `(xw, h0, u, b)`."""
    units = u.shape[0]
    steps = tf.shape(hs)[0]
    gates_ta, inner_h_ta, cand_ta = saved
    prev_flat = previous_states(h0, hs)
    prev = tf.reshape(prev_flat, tf.shape(hs))
    d_inner_ta = tf.TensorArray(hs.dtype, size=steps, element_shape=[h0.shape[0], 3 * units])
    d_cand_ta = tf.TensorArray(hs.dtype, size=steps, element_shape=h0.shape)

    def body(t, dh, d_inner_ta, d_cand_ta):
        dh = dh + dhs[t]
        if mask is not None:
            m = mask[t]
            zero = tf.zeros_like(dh)
            dh_carry, dh = tf.where(m, zero, dh), tf.where(m, dh, zero)
        zr = gates_ta.read(t)
        z, r = zr[:, :units], zr[:, units:]
        rh = inner_h_ta.read(t)
        hh = cand_ta.read(t)
        da_h = dh * (1 - z) * (1.0 - hh * hh)
        da_z = dh * (prev[t] - hh) * z * (1.0 - z)
        da_r = da_h * rh * r * (1.0 - r)
        d_inner = tf.concat([da_z, da_r, da_h * r], 1)
        dh_prev = tf.matmul(d_inner, u, transpose_b=True) + dh * z
        if mask is not None:
            dh_prev = dh_prev + dh_carry
        return t - 1, dh_prev, d_inner_ta.write(t, d_inner), d_cand_ta.write(t, da_h)

    _, dh0, d_inner_ta, d_cand_ta = tf.while_loop(
        lambda t, *_: t >= 0, body, (steps - 1, tf.zeros_like(h0), d_inner_ta, d_cand_ta)
    )
    d_inner = d_inner_ta.stack()
    dxw = tf.concat([d_inner[:, :, : 2 * units], d_cand_ta.stack()], -1)
    d_inner = flat(d_inner)
    du = tf.matmul(prev_flat, d_inner, transpose_a=True)
    return dxw, dh0, du, tf.reduce_sum(d_inner, 0)


@tf.custom_gradient
def _gru(xw, h0, u, b):
    hs, saved = _forward(xw, h0, u, b, None)

    def grad(dhs):
        return _backward(zeros_if_none(dhs, hs), h0, u, None, hs, saved)

    return hs, grad


@tf.custom_gradient
def _gru_masked(xw, h0, u, b, mask):
    hs, saved = _forward(xw, h0, u, b, mask)

    def grad(dhs):
        return (*_backward(zeros_if_none(dhs, hs), h0, u, mask, hs, saved), None)

    return hs, grad


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

    def _fast_recurrence(self, xw, initial_state, mask, training):
        u = tf.convert_to_tensor(self.cell.recurrent_kernel)
        if self.cell.use_bias:
            b = tf.convert_to_tensor(self.cell.bias)[1]
        else:
            b = tf.zeros([u.shape[1]], u.dtype)
        hs = gru_recurrence(xw, initial_state[0], u, b, mask, differentiable=bool(training))
        return hs, [hs[-1]]


keep_keras_class_name(FastGRU, keras.layers.GRU)
