"""`FastGRU`: Keras's `GRU` (`reset_after=True`) with its own CPU sequence computation."""

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
    sizes = unit_shards(recurrent_kernel.shape[0], SHARD_UNITS["gru"])
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
    `hs` and the per-step tensors the backward reads: one `TensorArray` per shard, each
    step's `z, r`, `(h @ U + b)` of the candidate and the candidate side by side
    (`[batch, 4 * n]`). Every loop variable costs the executor a few operations per step,
    so the loop carries only `h` and these arrays (the shards of `h` are split from it)."""
    steps = tf.shape(x)[0]
    # Each shard's projection as two blocks, `z, r` and the candidate, so that a step
    # reads both without a copy (`xw[t]` slices the first axis: TensorFlow aliases it).
    widths = [w for n in sizes for w in (2 * n, n)]
    xws = shard_projections(x, kernel, bias, widths)
    us, bs = split_shards(u, [3 * n for n in sizes]), split_shards(b, [3 * n for n in sizes])

    def body(t, h, hs, *saved):
        m = None if mask is None else mask[t]
        h_news, kept = [], []
        for s, (u_s, b_s, h_s, n) in enumerate(zip(us, bs, split_shards(h, sizes), sizes)):
            x_zr, x_h = xws[2 * s][t], xws[2 * s + 1][t]
            inner_zr, rh = tf.split(tf.matmul(h, u_s) + b_s, [2 * n, n], 1)
            zr = tf.sigmoid(x_zr + inner_zr)
            z, r = tf.split(zr, 2, 1)
            hh = tf.tanh(x_h + r * rh)
            h_new = hh + z * (h_s - hh)
            h_news.append(h_new if m is None else tf.where(m, h_new, h_s))
            if save:
                kept.append(tf.concat([zr, rh, hh], 1))
        h_new = join_shards(h_news)
        saved = tuple(a.write(t, v) for a, v in zip(saved, kept, strict=True))
        return (t + 1, h_new, hs.write(t, h_new), *saved)

    def array(width):
        return tf.TensorArray(x.dtype, size=steps, element_shape=[h0.shape[0], width])

    arrays = tuple(array(4 * n) for n in (sizes if save else ()))
    _, _, hs, *saved = tf.while_loop(
        lambda t, *_: t < steps, body, (tf.constant(0), h0, array(h0.shape[1]), *arrays)
    )
    return hs.stack(), saved


def _backward(dhs, x, kernel, h0, u, mask, hs, saved, sizes):
    """Gradients of `hs` with respect to `(x, kernel, bias, h0, u, b)`, weights in
    `shard_gates` layout."""
    uts = recurrent_transposes(u, [3 * n for n in sizes])

    def step(t, carry, prev):
        (dh,) = carry
        outs, parts, through = [], [], []
        per_shard = zip(split_shards(dh, sizes), split_shards(prev[t], sizes), saved, uts)
        for dh_s, h_prev, array, ut in per_shard:
            z, r, rh, hh = tf.split(array.read(t), 4, 1)
            da_h = dh_s * (1 - z) * (1.0 - hh * hh)
            da_z = dh_s * (h_prev - hh) * z * (1.0 - z)
            da_r = da_h * rh * r * (1.0 - r)
            d_inner = tf.concat([da_z, da_r, da_h * r], 1)
            # One output per shard: the recurrent pre-activation's gradient, then the
            # candidate's input-side one (`da_h`, without the reset gate).
            outs.append(tf.concat([d_inner, da_h], 1))
            parts.append(tf.matmul(d_inner, ut))
            through.append(dh_s * z)
        return (tf.add_n([*parts, join_shards(through)]),), tuple(outs)

    def split_grads(stacked):
        dxw, d_inners = [], []
        for d, n in zip(stacked, sizes, strict=True):
            dxw.append(tf.concat([d[..., : 2 * n], d[..., 3 * n :]], -1))
            d_inners.append(d[..., : 3 * n])
        return join_shards(dxw), join_shards(d_inners)

    (dh0,), dx, dkernel, dbias, du, db = chunked_backward(
        step, (tf.zeros_like(h0),), dhs, mask, x, kernel, h0, hs, split_grads,
        outputs=len(sizes), recurrent_bias=True,
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
