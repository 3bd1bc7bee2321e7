"""`FastGRU`: Keras's `GRU` (`reset_after=True`) with its own CPU sequence computation."""

from __future__ import annotations

import keras
import tensorflow as tf

from textrnn.layers.fast_recurrent import (
    FastRecurrentMixin,
    chunked_backward,
    gated_cell_blocker,
    input_projection,
    keep_keras_class_name,
    zeros_if_none,
)


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
    if not differentiable:
        xw = input_projection(x, kernel, bias)
        return _forward(xw, h0, recurrent_kernel, recurrent_bias, mask, save=False)[0]
    masks = () if mask is None else (mask,)

    @tf.custom_gradient
    def recurrence(x, kernel, bias, h0, u, b, *masks):
        m = masks[0] if masks else None
        hs, saved = _forward(input_projection(x, kernel, bias), h0, u, b, m)

        def grad(dhs):
            grads = _backward(zeros_if_none(dhs, hs), x, kernel, h0, u, m, hs, saved)
            return (*grads, *(None for _ in masks))

        return hs, grad

    return recurrence(x, kernel, bias, h0, recurrent_kernel, recurrent_bias, *masks)


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


def _backward(dhs, x, kernel, h0, u, mask, hs, saved):
    """Gradients of `hs` with respect to `(x, kernel, bias, h0, u, b)`."""
    units = u.shape[0]
    gates_ta, inner_h_ta, cand_ta = saved

    def step(t, carry, prev):
        (dh,) = carry
        zr = gates_ta.read(t)
        z, r = zr[:, :units], zr[:, units:]
        rh = inner_h_ta.read(t)
        hh = cand_ta.read(t)
        da_h = dh * (1 - z) * (1.0 - hh * hh)
        da_z = dh * (prev[t] - hh) * z * (1.0 - z)
        da_r = da_h * rh * r * (1.0 - r)
        d_inner = tf.concat([da_z, da_r, da_h * r], 1)
        return (tf.matmul(d_inner, u, transpose_b=True) + dh * z,), (d_inner, da_h)

    def split_grads(stacked):
        d_inner, da_h = stacked
        return tf.concat([d_inner[:, :, : 2 * units], da_h], -1), d_inner

    (dh0,), dx, dkernel, dbias, du, db = chunked_backward(
        step, (tf.zeros_like(h0),), dhs, mask, x, kernel, h0, hs, split_grads, outputs=2,
        recurrent_bias=True,
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
