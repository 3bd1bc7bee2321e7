"""`FastLSTM`: Keras's `LSTM` with its own CPU sequence computation (same weights)."""

from __future__ import annotations

import keras
import tensorflow as tf

from textrnn.layers.fast_recurrent import (
    SHARD_UNITS,
    FastRecurrentMixin,
    chunked_backward,
    gated_cell_blocker,
    join_shards,
    keep_keras_class_name,
    recurrent_transposes,
    shard_gates,
    shard_projections,
    split_shards,
    unit_shards,
    zeros_if_none,
)

# Keras's gate order `i, f, c, o` as `i, c, f, o`, the order of TensorFlow's fused kernels.
ICFO = (0, 2, 1, 3)


def lstm_recurrence(
    x, kernel, bias, h0, c0, recurrent_kernel, mask=None, differentiable=True, fused=True
):
    """The LSTM over a sequence, input projection included, with a hand-written gradient.

    Keras's equations: `z = x_t @ W + b + h @ U` (gates `i, f, c, o`),
    `c = f * c + i * tanh(z_c)`, `h = o * tanh(c)`; a masked step keeps `h` and `c`. The
    units run as shards (`unit_shards`): the weights are reordered shard by shard (gates
    `i, c, f, o` within each, `shard_gates`), and autodiff maps their gradients back.

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
    sizes = unit_shards(recurrent_kernel.shape[0], SHARD_UNITS["lstm"])
    kernel, bias, u = (shard_gates(w, ICFO, sizes) for w in (kernel, bias, recurrent_kernel))
    if not differentiable:
        return _forward(x, kernel, bias, h0, c0, u, mask, sizes, save=False)[:2]
    masks = () if mask is None else (mask,)

    @tf.custom_gradient
    def recurrence(x, kernel, bias, h0, c0, u, *masks):
        m = masks[0] if masks else None
        hs, c_last, saved = _forward(x, kernel, bias, h0, c0, u, m, sizes)

        def grad(dhs, dc_last):
            dhs, dc_last = zeros_if_none(dhs, hs), zeros_if_none(dc_last, c_last)
            grads = _backward(dhs, dc_last, x, kernel, h0, u, m, hs, saved, fused, sizes)
            return (*grads, *(None for _ in masks))

        return (hs, c_last), grad

    return recurrence(x, kernel, bias, h0, c0, u, *masks)


def _forward(x, kernel, bias, h0, c0, u, mask, sizes, save=True):
    """The input projection and forward loop, weights in `shard_gates` layout. Returns
    `hs`, `c_last` and the per-step tensors the backward reads (`TensorArray`s handed over
    as they are, one per shard, each step's `c_prev, i, ci, f, o, co` stacked: every
    loop variable costs the executor a few operations per step, measured 10% of the
    training step against six arrays per shard)."""
    steps = tf.shape(x)[0]
    widths = [4 * n for n in sizes]
    xws = shard_projections(x, kernel, bias, widths)
    us = split_shards(u, widths)

    def body(t, h, c, hs, *saved):
        m = None if mask is None else mask[t]
        h_parts, c_news, kept = [], [], []
        for xw, u_s, c_s in zip(xws, us, split_shards(c, sizes), strict=True):
            # xw[t] slices the first axis: TensorFlow aliases the buffer, no copy.
            z_i, z_c, z_f, z_o = tf.split(xw[t] + tf.matmul(h, u_s), 4, axis=1)
            i, f, o = tf.sigmoid(z_i), tf.sigmoid(z_f), tf.sigmoid(z_o)
            ci = tf.tanh(z_c)
            c_new = f * c_s + i * ci
            co = tf.tanh(c_new)
            h_parts.append(o * co)
            c_news.append(c_new)
            if save:
                kept.append(tf.stack([c_s, i, ci, f, o, co]))
        h_new, c_new = join_shards(h_parts), join_shards(c_news)
        if m is not None:
            h_new, c_new = tf.where(m, h_new, h), tf.where(m, c_new, c)
        saved = tuple(a.write(t, v) for a, v in zip(saved, kept, strict=True))
        return (t + 1, h_new, c_new, hs.write(t, h_new), *saved)

    arrays = tuple(
        tf.TensorArray(x.dtype, size=steps, element_shape=[6, h0.shape[0], n])
        for n in (sizes if save else ())
    )
    hs = tf.TensorArray(x.dtype, size=steps, element_shape=h0.shape)
    _, _, c_last, hs, *saved = tf.while_loop(
        lambda t, *_: t < steps, body, (tf.constant(0), h0, c0, hs, *arrays)
    )
    return hs.stack(), c_last, saved


def _backward(dhs, dc_last, x, kernel, h0, u, mask, hs, saved, fused, sizes):
    """Gradients of `(hs, c_last)` with respect to `(x, kernel, bias, h0, c0, u)`, weights
    in `shard_gates` layout."""
    uts = recurrent_transposes(u, [4 * n for n in sizes])
    # TensorFlow's fused kernel of the gate arithmetic (float32 and half only, no XLA
    # kernel; it reads neither `x`, `w`, `b` nor `cs` but checks their shapes).
    fused = fused and u.dtype == tf.float32
    no_input = tf.zeros([tf.shape(h0)[0], 0], u.dtype)
    shapes = {
        n: (tf.zeros([n, 4 * n], u.dtype), tf.zeros([n], u.dtype), tf.zeros([4 * n], u.dtype))
        for n in set(sizes)
    }

    def shard_step(t, dh, dc, n, array):
        c_prev, i, ci, f, o, co = tf.unstack(array.read(t))
        if fused:
            no_weights, no_peephole, no_bias = shapes[n]
            dc_prev, dz, *_ = tf.raw_ops.LSTMBlockCellGrad(
                x=no_input, cs_prev=c_prev, h_prev=dh, w=no_weights, wci=no_peephole,
                wcf=no_peephole, wco=no_peephole, b=no_bias,
                i=i, cs=c_prev, f=f, o=o, ci=ci, co=co, cs_grad=dc, h_grad=dh,
                use_peephole=False,
            )  # fmt: skip
            return dz, dc_prev
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
        return dz, dc * f

    def step(t, carry, prev):
        dh, dc = carry
        dzs, dc_prevs = [], []
        per_shard = zip(split_shards(dh, sizes), split_shards(dc, sizes), sizes, saved, strict=True)
        for dh_s, dc_s, n, array in per_shard:
            dz, dc_prev = shard_step(t, dh_s, dc_s, n, array)
            dzs.append(dz)
            dc_prevs.append(dc_prev)
        parts = [tf.matmul(dz, ut) for dz, ut in zip(dzs, uts, strict=True)]
        dh_prev = tf.add_n(parts) if len(parts) > 1 else parts[0]
        return (dh_prev, join_shards(dc_prevs)), tuple(dzs)

    def split_grads(stacked):
        return join_shards(stacked), None

    (dh0, dc0), dx, dkernel, dbias, du = chunked_backward(
        step, (tf.zeros_like(h0), dc_last), dhs, mask, x, kernel, h0, hs, split_grads,
        outputs=len(sizes),
    )  # fmt: skip
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
