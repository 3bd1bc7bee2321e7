"""`FastLSTM`: Keras's `LSTM` with its own CPU sequence computation (same weights)."""

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


def to_icfo(weights):
    """Keras's gate order `i, f, c, o` -> `i, c, f, o` (TensorFlow's LSTM kernels') along
    the last axis; applied to the kernels and bias, autodiff maps their gradients back.

    Example:
        >>> to_icfo(tf.constant([1, 2, 3, 4])).numpy().tolist()
        [1, 3, 2, 4]
    """
    i, f, c, o = tf.split(weights, 4, axis=-1)
    return tf.concat([i, c, f, o], -1)


def lstm_recurrence(
    x, kernel, bias, h0, c0, recurrent_kernel, mask=None, differentiable=True, fused=True
):
    """The LSTM over a sequence, input projection included, with a hand-written gradient.

    Keras's equations: `z = x_t @ W + b + h @ U` (gates `i, f, c, o`),
    `c = f * c + i * tanh(z_c)`, `h = o * tanh(c)`; a masked step keeps `h` and `c`.

    Args:
        x: `[time, batch, in]`, the time-major inputs.
        kernel: `[in, 4 * units]`; bias: `[4 * units]` (zeros for a layer without one).
        h0, c0: `[batch, units]`.
        recurrent_kernel: `[units, 4 * units]`.
        mask: optional bool `[time, batch, 1]`.
        differentiable: True: the hand-written gradient (`tf.custom_gradient`) for
            training; False: the forward loop alone, plain ops (TensorFlow's autodiff if it
            is differentiated), which keeps SavedModels free of custom gradients.
        fused: the gate gradients in TensorFlow's fused `LSTMBlockCellGrad` kernel
            (float32; it has no XLA kernel), or in plain ops (`False`, and in float64).

    Returns:
        `(hs [time, batch, units], c_last [batch, units])`: the carried hidden state after
        every step and the final carry.

    Example:
        >>> hs, c = lstm_recurrence(tf.zeros([5, 2, 3]), tf.zeros([3, 8]), tf.zeros([8]),
        ...                         tf.zeros([2, 2]), tf.zeros([2, 2]), tf.zeros([2, 8]))
        >>> hs.shape, c.shape
        (TensorShape([5, 2, 2]), TensorShape([2, 2]))
    """
    kernel, bias, u = to_icfo(kernel), to_icfo(bias), to_icfo(recurrent_kernel)
    if not differentiable:
        return _forward(input_projection(x, kernel, bias), h0, c0, u, mask, save=False)[:2]
    masks = () if mask is None else (mask,)

    @tf.custom_gradient
    def recurrence(x, kernel, bias, h0, c0, u, *masks):
        m = masks[0] if masks else None
        hs, c_last, saved = _forward(input_projection(x, kernel, bias), h0, c0, u, m)

        def grad(dhs, dc_last):
            dhs, dc_last = zeros_if_none(dhs, hs), zeros_if_none(dc_last, c_last)
            grads = _backward(dhs, dc_last, x, kernel, h0, u, m, hs, saved, fused)
            return (*grads, *(None for _ in masks))

        return (hs, c_last), grad

    return recurrence(x, kernel, bias, h0, c0, u, *masks)


def _forward(xw, h0, c0, u, mask, save=True):
    """The forward loop, gates `i, c, f, o`. Returns `hs`, `c_last` and the per-step
    tensors the backward reads (`TensorArray`s handed over as they are)."""
    steps = tf.shape(xw)[0]

    def body(t, h, c, hs, *saved):
        # xw[t] slices the first axis: TensorFlow aliases the buffer, no copy.
        z_i, z_c, z_f, z_o = tf.split(xw[t] + tf.matmul(h, u), 4, axis=1)
        i, f, o = tf.sigmoid(z_i), tf.sigmoid(z_f), tf.sigmoid(z_o)
        ci = tf.tanh(z_c)
        c_new = f * c + i * ci
        co = tf.tanh(c_new)
        h_new = o * co
        if mask is not None:
            m = mask[t]
            h_new = tf.where(m, h_new, h)
            c_new = tf.where(m, c_new, c)
        if save:
            saved = tuple(a.write(t, v) for a, v in zip(saved, (c, i, ci, f, o, co)))
        return (t + 1, h_new, c_new, hs.write(t, h_new), *saved)

    arrays = tuple(
        tf.TensorArray(xw.dtype, size=steps, element_shape=h0.shape)
        for _ in range(7 if save else 1)
    )
    _, _, c_last, hs, *saved = tf.while_loop(
        lambda t, *_: t < steps, body, (tf.constant(0), h0, c0, *arrays)
    )
    return hs.stack(), c_last, saved


def _backward(dhs, dc_last, x, kernel, h0, u, mask, hs, saved, fused):
    """Gradients of `(hs, c_last)` with respect to `(x, kernel, bias, h0, c0, u)`."""
    units = u.shape[0]
    c_prev_ta, i_ta, ci_ta, f_ta, o_ta, co_ta = saved
    # TensorFlow's fused kernel of the gate arithmetic (float32 and half only, no XLA
    # kernel; it reads neither `x`, `w`, `b` nor `cs` but checks their shapes).
    fused = fused and u.dtype == tf.float32
    no_input = tf.zeros([tf.shape(h0)[0], 0], u.dtype)
    no_peephole = tf.zeros([units], u.dtype)
    no_bias = tf.zeros([4 * units], u.dtype)

    def step(t, carry, prev):
        dh, dc = carry
        c_prev, i, ci, f, o, co = (a.read(t) for a in (c_prev_ta, i_ta, ci_ta, f_ta, o_ta, co_ta))
        if fused:
            dc_prev, dz, *_ = tf.raw_ops.LSTMBlockCellGrad(
                x=no_input, cs_prev=c_prev, h_prev=dh, w=u, wci=no_peephole,
                wcf=no_peephole, wco=no_peephole, b=no_bias, i=i, cs=c_prev, f=f, o=o,
                ci=ci, co=co, cs_grad=dc, h_grad=dh, use_peephole=False,
            )  # fmt: skip
        else:
            dc = dc + dh * o * (1.0 - co * co)
            dz = tf.concat(
                [
                    dc * ci * i * (1.0 - i),
                    dc * i * (1.0 - ci * ci),
                    dc * c_prev * f * (1.0 - f),
                    dh * co * o * (1.0 - o),
                ],
                1,
            )
            dc_prev = dc * f
        return (tf.matmul(dz, u, transpose_b=True), dc_prev), (dz,)

    (dh0, dc0), dx, dkernel, dbias, du = chunked_backward(
        step,
        (tf.zeros_like(h0), dc_last),
        dhs,
        mask,
        x,
        kernel,
        h0,
        hs,
        lambda stacked: (stacked[0], None),
    )
    return dx, dkernel, dbias, dh0, dc0, du


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

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The gate gradient's fused TensorFlow kernel has no XLA kernel: Keras refuses
        # `jit_compile=True` for a model holding this layer until `xla_compatible(model)`.
        self.fused_kernels = True
        self.supports_jit = False

    def _fast_cell_blocker(self):
        return gated_cell_blocker(self)

    def _fast_projection(self):
        bias = self.cell.bias if self.cell.use_bias else None
        return tf.convert_to_tensor(self.cell.kernel), (
            None if bias is None else tf.convert_to_tensor(bias)
        )

    def _fast_recurrence(self, x, kernel, bias, initial_state, mask, training):
        h0, c0 = initial_state
        u = tf.convert_to_tensor(self.cell.recurrent_kernel)
        hs, c_last = lstm_recurrence(
            x, kernel, bias, h0, c0, u, mask, training, fused=self.fused_kernels
        )
        return hs, [hs[-1], c_last]


keep_keras_class_name(FastLSTM, keras.layers.LSTM)
