"""`FastSimpleRNN`: Keras's `SimpleRNN` (tanh) with its own CPU sequence computation."""

from __future__ import annotations

import keras
import tensorflow as tf

from textrnn.layers.fast_recurrent import (
    FastRecurrentMixin,
    chunked_backward,
    input_projection,
    is_activation,
    keep_keras_class_name,
    zeros_if_none,
)


def rnn_recurrence(x, kernel, bias, h0, recurrent_kernel, mask=None, differentiable=True):
    """The tanh recurrence `h = tanh(x_t @ W + b + h @ U)` over a sequence, input
    projection included, with a hand-written gradient; a masked step keeps `h`.

    Args:
        x: `[time, batch, in]`, the time-major inputs.
        kernel: `[in, units]`; bias: `[units]` (zeros for a layer without one).
        h0: `[batch, units]`.
        recurrent_kernel: `[units, units]`.
        mask: optional bool `[time, batch, 1]`.
        differentiable: True: the hand-written gradient (`tf.custom_gradient`) for
            training; False: the forward loop alone, plain ops (TensorFlow's autodiff if it
            is differentiated), which keeps SavedModels free of custom gradients.

    Returns:
        `hs [time, batch, units]`: the carried hidden state after every step.

    Example:
        >>> rnn_recurrence(tf.zeros([5, 2, 4]), tf.zeros([4, 3]), tf.zeros([3]),
        ...                tf.zeros([2, 3]), tf.eye(3)).shape
        TensorShape([5, 2, 3])
    """
    if not differentiable:
        return _forward(input_projection(x, kernel, bias), h0, recurrent_kernel, mask)
    masks = () if mask is None else (mask,)

    @tf.custom_gradient
    def recurrence(x, kernel, bias, h0, u, *masks):
        m = masks[0] if masks else None
        hs = _forward(input_projection(x, kernel, bias), h0, u, m)

        def grad(dhs):
            grads = _backward(zeros_if_none(dhs, hs), x, kernel, h0, u, m, hs)
            return (*grads, *(None for _ in masks))

        return hs, grad

    return recurrence(x, kernel, bias, h0, recurrent_kernel, *masks)


def _forward(xw, h0, u, mask):
    steps = tf.shape(xw)[0]

    def body(t, h, hs):
        h_new = tf.tanh(xw[t] + tf.matmul(h, u))
        if mask is not None:
            h_new = tf.where(mask[t], h_new, h)
        return t + 1, h_new, hs.write(t, h_new)

    hs = tf.TensorArray(xw.dtype, size=steps, element_shape=h0.shape)
    _, _, hs = tf.while_loop(lambda t, *_: t < steps, body, (tf.constant(0), h0, hs))
    return hs.stack()


def _backward(dhs, x, kernel, h0, u, mask, hs):
    """Gradients of `hs` with respect to `(x, kernel, bias, h0, u)`."""
    ut = tf.transpose(u)  # once per pass, not `transpose_b` per step (`recurrent_transposes`)

    def step(t, carry, prev):
        (dh,) = carry
        h = hs[t]  # at a valid step, the new state
        da = dh * (1.0 - h * h)
        return (tf.matmul(da, ut),), (da,)

    (dh0,), dx, dkernel, dbias, du = chunked_backward(
        step, (tf.zeros_like(h0),), dhs, mask, x, kernel, h0, hs,
        lambda stacked: (stacked[0], None),
    )  # fmt: skip
    return dx, dkernel, dbias, dh0, du


@keras.saving.register_keras_serializable(package="textrnn")
class FastSimpleRNN(FastRecurrentMixin, keras.layers.SimpleRNN):
    """`keras.layers.SimpleRNN` with textrnn's CPU sequence computation; a drop-in
    replacement.

    Same arguments, weights, `.cell`, config and call as `keras.layers.SimpleRNN`; files
    saved with either load into the other. The fast path (see
    `textrnn.layers.fast_recurrent`) needs `activation="tanh"` (the default), no `unroll`,
    no recurrent dropout while training, float32/float64; otherwise Keras's loop runs.

    Args:
        units: hidden size; every other argument is `keras.layers.SimpleRNN`'s.

    Call arguments:
        As `keras.layers.SimpleRNN`: `sequences`, `initial_state`, `mask`, `training`.

    Returns:
        As `keras.layers.SimpleRNN`.

    Raises:
        ValueError: as `keras.layers.SimpleRNN` for invalid arguments.

    Example:
        >>> layer = FastSimpleRNN(8, return_sequences=True)
        >>> layer(tf.zeros([2, 5, 3])).shape
        TensorShape([2, 5, 8])
    """

    def _fast_cell_blocker(self):
        if not is_activation(self.cell.activation, "tanh"):
            return "activation is not tanh"
        return None

    def _fast_uses_dropout(self):
        return self.cell.dropout > 0.0  # SimpleRNNCell applies any non-zero rate

    def _fast_projection(self):
        bias = self.cell.bias
        return tf.convert_to_tensor(self.cell.kernel), (
            None if bias is None else tf.convert_to_tensor(bias)
        )

    def _fast_recurrence(self, x, kernel, bias, initial_state, mask, training):
        u = tf.convert_to_tensor(self.cell.recurrent_kernel)
        hs = rnn_recurrence(x, kernel, bias, initial_state[0], u, mask, training)
        return hs, [hs[-1]]


keep_keras_class_name(FastSimpleRNN, keras.layers.SimpleRNN)
