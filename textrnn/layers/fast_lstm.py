"""`FastLSTM`: Keras's `LSTM` with its own CPU sequence computation (same weights)."""

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


def lstm_recurrence(xw, h0, c0, recurrent_kernel, mask=None, differentiable=True):
    """The LSTM recurrence after the input projection, with a hand-written gradient.

    Gates in Keras's order `i, f, c, o`: `z = xw_t + h @ U`, `c = f * c + i * tanh(z_c)`,
    `h = o * tanh(c)`; a masked step keeps `h` and `c`.

    Args:
        xw: `[time, batch, 4 * units]`, the input projection plus bias of every step.
        h0, c0: `[batch, units]`.
        recurrent_kernel: `[units, 4 * units]`.
        mask: optional bool `[time, batch, 1]`.
        differentiable: True: the hand-written gradient (`tf.custom_gradient`) for
            training; False: the forward loop alone, plain ops (TensorFlow's autodiff if it
            is differentiated), which keeps SavedModels free of custom gradients.

    Returns:
        `(hs [time, batch, units], c_last [batch, units])`: the carried hidden state after
        every step and the final carry.

    Example:
        >>> hs, c = lstm_recurrence(tf.zeros([5, 2, 8]), tf.zeros([2, 2]), tf.zeros([2, 2]),
        ...                         tf.zeros([2, 8]))
        >>> hs.shape, c.shape
        (TensorShape([5, 2, 2]), TensorShape([2, 2]))
    """
    if not differentiable:
        return _forward(xw, h0, c0, recurrent_kernel, mask, save=False)[:2]
    if mask is None:
        return _lstm(xw, h0, c0, recurrent_kernel)
    return _lstm_masked(xw, h0, c0, recurrent_kernel, mask)


def _forward(xw, h0, c0, u, mask, save=True):
    """The forward loop. Returns `hs`, `c_last` and the per-step tensors the backward
    reads (`TensorArray`s handed over as they are: no stacking and unstacking)."""
    units = u.shape[0]
    steps = tf.shape(xw)[0]

    def array(like):
        return tf.TensorArray(xw.dtype, size=steps, element_shape=like.shape)

    def body(t, h, c, hs, *saved):
        # xw[t] slices the first axis: TensorFlow aliases the buffer, no copy.
        z = xw[t] + tf.matmul(h, u)
        s = tf.sigmoid(z)
        g = tf.tanh(z[:, 2 * units : 3 * units])
        c_new = s[:, units : 2 * units] * c + s[:, :units] * g
        tc = tf.tanh(c_new)
        h_new = s[:, 3 * units :] * tc
        if mask is not None:
            m = mask[t]
            h_new = tf.where(m, h_new, h)
            c_new = tf.where(m, c_new, c)
        if save:
            c_prev, sig, cand, tanh_c = saved
            saved = (c_prev.write(t, c), sig.write(t, s), cand.write(t, g), tanh_c.write(t, tc))
        return (t + 1, h_new, c_new, hs.write(t, h_new), *saved)

    arrays = (array(h0), array(c0), array(xw[0]), array(h0), array(h0))[: 5 if save else 1]
    _, _, c_last, hs, *saved = tf.while_loop(
        lambda t, *_: t < steps, body, (tf.constant(0), h0, c0, *arrays)
    )
    return hs.stack(), c_last, saved


def _backward(dhs, dc_last, h0, u, mask, hs, saved):
    """Gradients of `(hs, c_last)` with respect to `(xw, h0, c0, u)`."""
    units = u.shape[0]
    steps = tf.shape(hs)[0]
    c_prev_ta, sig_ta, cand_ta, tanh_c_ta = saved
    dz_ta = tf.TensorArray(hs.dtype, size=steps, element_shape=sig_ta.element_shape)

    def body(t, dh, dc, dz_ta):
        dh = dh + dhs[t]
        s = sig_ta.read(t)
        i, f, o = s[:, :units], s[:, units : 2 * units], s[:, 3 * units :]
        g = cand_ta.read(t)
        tc = tanh_c_ta.read(t)
        if mask is not None:
            # A masked step passed its state through: its gradient goes straight back.
            m = mask[t]
            zero = tf.zeros_like(dh)
            dh_carry, dc_carry = tf.where(m, zero, dh), tf.where(m, zero, dc)
            dh, dc = tf.where(m, dh, zero), tf.where(m, dc, zero)
        dc = dc + dh * o * (1.0 - tc * tc)
        dz = tf.concat(
            [
                dc * g * i * (1.0 - i),
                dc * c_prev_ta.read(t) * f * (1.0 - f),
                dc * i * (1.0 - g * g),
                dh * tc * o * (1.0 - o),
            ],
            1,
        )
        dh_prev = tf.matmul(dz, u, transpose_b=True)
        dc_prev = dc * f
        if mask is not None:
            dh_prev, dc_prev = dh_prev + dh_carry, dc_prev + dc_carry
        return t - 1, dh_prev, dc_prev, dz_ta.write(t, dz)

    _, dh0, dc0, dz_ta = tf.while_loop(
        lambda t, *_: t >= 0, body, (steps - 1, tf.zeros_like(h0), dc_last, dz_ta)
    )
    dz = dz_ta.stack()
    # The recurrent kernel's gradient for all steps at once: [units, T*B] @ [T*B, 4*units].
    du = tf.matmul(previous_states(h0, hs), flat(dz), transpose_a=True)
    return dz, dh0, dc0, du


@tf.custom_gradient
def _lstm(xw, h0, c0, u):
    hs, c_last, saved = _forward(xw, h0, c0, u, None)

    def grad(dhs, dc_last):
        dhs, dc_last = zeros_if_none(dhs, hs), zeros_if_none(dc_last, c_last)
        return _backward(dhs, dc_last, h0, u, None, hs, saved)

    return (hs, c_last), grad


@tf.custom_gradient
def _lstm_masked(xw, h0, c0, u, mask):
    hs, c_last, saved = _forward(xw, h0, c0, u, mask)

    def grad(dhs, dc_last):
        dhs, dc_last = zeros_if_none(dhs, hs), zeros_if_none(dc_last, c_last)
        return (*_backward(dhs, dc_last, h0, u, mask, hs, saved), None)

    return (hs, c_last), grad


@keras.saving.register_keras_serializable(package="textrnn")
class FastLSTM(FastRecurrentMixin, keras.layers.LSTM):
    """`keras.layers.LSTM` with textrnn's CPU sequence computation; a drop-in replacement.

    Same arguments, weights (names, shapes, gate order `i, f, c, o`), `.cell`, config and
    call as `keras.layers.LSTM`; files saved with either load into the other. The fast
    path (see `textrnn.layers.fast_recurrent`) needs `activation="tanh"`,
    `recurrent_activation="sigmoid"`, no cuDNN (on a GPU Keras's cuDNN kernel runs), no
    `unroll`, no recurrent dropout while training, float32/float64; otherwise Keras's loop
    runs. `use_bias=False` is supported.

    Args:
        units: hidden size; every other argument is `keras.layers.LSTM`'s.

    Call arguments:
        As `keras.layers.LSTM`: `sequences`, `initial_state`, `mask`, `training`.

    Returns:
        As `keras.layers.LSTM`.

    Raises:
        ValueError: as `keras.layers.LSTM` for invalid arguments.

    Example:
        >>> layer = FastLSTM(8, return_sequences=True, return_state=True)
        >>> [t.shape for t in layer(tf.zeros([2, 5, 3]))]
        [TensorShape([2, 5, 8]), TensorShape([2, 8]), TensorShape([2, 8])]
    """

    def _fast_cell_blocker(self):
        return gated_cell_blocker(self)

    def _fast_projection(self):
        bias = self.cell.bias if self.cell.use_bias else None
        return tf.convert_to_tensor(self.cell.kernel), (
            None if bias is None else tf.convert_to_tensor(bias)
        )

    def _fast_recurrence(self, xw, initial_state, mask, training):
        h0, c0 = initial_state
        u = tf.convert_to_tensor(self.cell.recurrent_kernel)
        hs, c_last = lstm_recurrence(xw, h0, c0, u, mask, differentiable=bool(training))
        return hs, [hs[-1], c_last]


keep_keras_class_name(FastLSTM, keras.layers.LSTM)
