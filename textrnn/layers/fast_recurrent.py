"""The machinery shared by `FastLSTM`, `FastGRU` and `FastSimpleRNN`.

The three layers subclass Keras's `LSTM`, `GRU` and `SimpleRNN` and replace only the
sequence computation (`inner_loop`); weights, `.cell`, configuration, masks, states,
`go_backwards`, `return_sequences` / `return_state` and `Bidirectional` are Keras's own.

The fast path (CPU, TensorFlow backend):

1. the input projection of every step at once, one GEMM `[time * batch, in] @ kernel`
   (plus the input bias), before the loop; input dropout, which Keras applies with the
   same mask at every step, multiplies the inputs before that GEMM;
2. a `tf.while_loop` holding only `h @ recurrent_kernel` and the gate arithmetic; the
   LSTM and GRU compute their units in shards (`SHARD_UNITS`, `unit_shards`),
   one GEMM and the gate arithmetic per shard, independent within a step, so the
   executor runs them side by side (and, with one thread per op, on a core each);
3. a hand-written backward (`tf.custom_gradient` over the projection and the loop) that
   runs the recurrence backwards with one GEMM per step (`dz @ recurrent_kernel^T`, the
   LSTM's gate arithmetic in TensorFlow's fused `LSTMBlockCellGrad` kernel) and, every
   `BACKWARD_CHUNK_STEPS` steps, that chunk's share of the weight and input gradients as
   large GEMMs over `chunk * batch` rows, which the executor overlaps with the next
   chunk's steps (`chunked_backward`), shard by shard as the forward.

At inference (`training=False`) the forward loop runs alone, plain ops: nothing is kept
for a backward pass, and a SavedModel holds no custom gradient (TensorFlow's autodiff
still differentiates it, should anyone).

Masks: a masked step keeps the state (`tf.where`, as Keras); outputs are what Keras's
generic loop gives (the last valid output, zero before the first valid step, or zero at
masked steps when `zero_output_for_mask`).

Where the fast path does not apply, the layer runs Keras's implementation (see
`fast_path_blocker` for the list: cuDNN, `unroll`, recurrent dropout in training, other
activations, another backend or dtype, ...).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import activations
from keras.src import backend as keras_backend

from textrnn.layers.projection import last_axis_matmul

_FLOAT_DTYPES = ("float32", "float64")


def fast_path_blocker(layer, training, mask):
    """Why `layer` cannot run the fast path now, or None when it can.

    Args:
        layer: a `FastLSTM`, `FastGRU` or `FastSimpleRNN`.
        training: the call's training flag.
        mask: the call's mask (or None).

    Returns:
        A short reason (str), or None.

    Example:
        >>> from textrnn.layers.fast_lstm import FastLSTM
        >>> fast_path_blocker(FastLSTM(4, unroll=True), False, None)
        'unroll=True'
    """
    cell = layer.cell
    if keras.backend.backend() != "tensorflow":
        return f"backend {keras.backend.backend()!r}"
    if layer.unroll:
        return "unroll=True"
    if getattr(layer, "use_cudnn", False) is True:
        return "use_cudnn=True"  # Keras's own path: cuDNN, or its error on a CPU
    if not getattr(layer, "fast_path", True):
        return "fast_path=False"
    if isinstance(training, tf.Tensor):
        return "symbolic training flag"
    if training and cell.recurrent_dropout > 0:
        return "recurrent_dropout in training"
    if training and 0 < cell.dropout and getattr(cell, "implementation", 2) == 1:
        return "implementation=1 with dropout (one mask per gate)"
    if layer.compute_dtype not in _FLOAT_DTYPES:
        return f"compute dtype {layer.compute_dtype}"
    if mask is not None and isinstance(mask, (list, tuple)):
        return "nested mask"
    return layer._fast_cell_blocker()


def is_activation(fn, name):
    """True when `fn` is Keras's (or TensorFlow's) `tanh` / `sigmoid`."""
    return (
        fn
        in {
            "tanh": (activations.tanh, tf.tanh, tf.math.tanh, keras.ops.tanh),
            "sigmoid": (activations.sigmoid, tf.sigmoid, tf.math.sigmoid, keras.ops.sigmoid),
        }[name]
    )


def gated_cell_blocker(layer, **cudnn_options):
    """Why the gates of an LSTM or GRU `layer` keep it off the fast path, or None.

    Args:
        layer: a `FastLSTM` or `FastGRU`.
        **cudnn_options: extra arguments of Keras's `cudnn_ok` (the GRU's `reset_after`).

    Returns:
        A short reason (str), or None.

    Example:
        >>> from textrnn.layers.fast_lstm import FastLSTM
        >>> gated_cell_blocker(FastLSTM(4, activation="relu"))
        'activation is not tanh'
    """
    cell = layer.cell
    if not is_activation(cell.activation, "tanh"):
        return "activation is not tanh"
    if not is_activation(cell.recurrent_activation, "sigmoid"):
        return "recurrent_activation is not sigmoid"
    if layer.use_cudnn == "auto" and keras_backend.cudnn_ok(
        cell.activation, cell.recurrent_activation, layer.unroll, cell.use_bias, **cudnn_options
    ):
        return "cuDNN available"
    return None


def time_major_inputs(sequences, dropout_mask=None):
    """`[batch, time, in]` -> `[time, batch, in]`, times the input dropout mask if any.

    Args:
        sequences: `[batch, time, in]`.
        dropout_mask: optional `[batch, in]`, the same at every step (as Keras's cells).

    Returns:
        `[time, batch, in]`.
    """
    if dropout_mask is not None:
        sequences = sequences * dropout_mask[:, None, :]
    return tf.transpose(sequences, [1, 0, 2])


def input_projection(x, kernel, bias):
    """`x @ kernel + bias` for every step at once: one GEMM over `time * batch` rows.

    Args:
        x: `[time, batch, in]`.
        kernel: `[in, gates * units]`.
        bias: `[gates * units]`.

    Returns:
        `[time, batch, gates * units]`.

    Example:
        >>> input_projection(tf.ones([5, 2, 3]), tf.ones([3, 4]), tf.zeros([4])).shape
        TensorShape([5, 2, 4])
    """
    return last_axis_matmul(x, kernel) + bias


# About how many units per shard of the recurrence, by cell (see `unit_shards`), read at
# each call. Measured on the 2-core machine (one step, batch 64): the LSTM 512's forward
# step 0.83 ms as one GEMM, 0.52 ms as 4 shards of 128 units, 0.57 ms as 8; its training
# step 2.52 / 2.14 / 2.53 / 2.34 ms (one shard / 128 / 64 / 256 units). The GRU 1024's
# training step, 8 shards of 128 against 4 of 256: 7.15 / 7.00 ms (TensorFlow's default
# threads), 6.32 / 6.07 ms (one thread per op, two ops at a time), and in a third,
# interleaved run 1.03x / 1.05x faster with 256 (its GEMM per shard is 3/4 of an LSTM's).
SHARD_UNITS = {"lstm": 128, "gru": 256}


def unit_shards(units, shard_units):
    """The sizes of the shards of units a recurrence of `units` runs as.

    Each step computes every shard's gates from the whole previous state (one GEMM
    `h @ U[:, shard's columns]` per shard) and only that shard's units of the new state.
    The shards are independent within a step, so TensorFlow's executor runs them side by
    side: on 2 CPU cores, GEMMs of a few hundred columns with their gate arithmetic keep
    both cores busier than one large GEMM followed by the gate arithmetic.

    Args:
        units: the layer's units.
        shard_units: about how many units per shard (the layers pass
            `SHARD_UNITS[cell]`).

    Returns:
        A list of shard sizes summing to `units` (one shard when `units` is small).

    Example:
        >>> unit_shards(512, 128), unit_shards(100, 128), unit_shards(300, 128)
        ([128, 128, 128, 128], [100], [150, 150])
    """
    count = max(1, units // shard_units)
    base, extra = divmod(units, count)
    return [base + 1] * extra + [base] * (count - extra)


def shard_gates(weights, order, sizes):
    """Reorders the gate columns of `weights` shard by shard.

    Keras lays out the last axis gate by gate (`[gate 0 of every unit | gate 1 | ...]`);
    this returns the gates in `order`, grouped by shard of units: `[gate order[0] of shard
    0 | gate order[1] of shard 0 | ... | gate order[0] of shard 1 | ...]`, so that each
    shard's columns are one contiguous block. Built from split/concat: autodiff maps the
    gradients back to Keras's layout.

    Args:
        weights: `[..., len(order) * units]` (a kernel or a bias).
        order: the gates' indices in the order wanted (the LSTM's `(0, 2, 1, 3)`: Keras's
            `i, f, c, o` as `i, c, f, o`, TensorFlow's fused kernels' order).
        sizes: the shard sizes (`unit_shards`).

    Returns:
        A tensor of the shape of `weights`.

    Example:
        >>> shard_gates(tf.constant([1, 2, 3, 4, 5, 6]), (1, 0), [2, 1]).numpy().tolist()
        [4, 5, 1, 2, 6, 3]
    """
    if len(sizes) == 1 and tuple(order) == tuple(range(len(order))):
        return weights
    gates = tf.split(weights, len(order), axis=-1)
    blocks = [split_shards(gates[g], sizes) for g in order]
    return tf.concat([block[s] for s in range(len(sizes)) for block in blocks], -1)


def split_shards(tensor, sizes):
    """`tensor [..., sum(sizes)]` as one tensor per shard along the last axis (itself, with
    no op, for a single shard: this runs at every step).

    Example:
        >>> [t.shape[-1] for t in split_shards(tf.zeros([2, 5]), [3, 2])]
        [3, 2]
    """
    return tf.split(tensor, sizes, -1) if len(sizes) > 1 else [tensor]


def join_shards(parts):
    """The shards' tensors joined along the last axis (the one tensor, with no op, for a
    single shard); the inverse of `split_shards`.

    Example:
        >>> join_shards([tf.zeros([2, 3]), tf.zeros([2, 2])]).shape
        TensorShape([2, 5])
    """
    return tf.concat(parts, -1) if len(parts) > 1 else parts[0]


def recurrent_transposes(u, widths):
    """`U^T` of each shard (`[width, units]` each, contiguous), for the backward's per-step
    `dz @ U^T`.

    Transposed once per backward pass rather than with `transpose_b=True` at every step:
    on the 2-core AMD EPYC, Eigen ran `[64, 768] @ [1024, 768]^T` at 35-45 GFLOP/s and the
    same product on a transposed copy at 56-74 GFLOP/s (a loop of 100 steps: 0.90-0.96
    against 0.55-0.67 s).

    Args:
        u: `[units, sum(widths)]`, the recurrent kernel in `shard_gates` layout.
        widths: each shard's columns.

    Returns:
        A list of `[width, units]` tensors.

    Example:
        >>> [t.shape for t in recurrent_transposes(tf.zeros([3, 6]), [4, 2])]
        [TensorShape([4, 3]), TensorShape([2, 3])]
    """
    return [tf.transpose(u_s) for u_s in split_shards(u, widths)]


def shard_projections(x, kernel, bias, widths):
    """The input projection of every shard (`input_projection` of each block of `widths`
    columns of `kernel` and `bias`, weights in `shard_gates` layout), so that each shard's
    step reads a contiguous `[batch, width]` block.

    Example:
        >>> [p.shape for p in shard_projections(tf.ones([5, 2, 3]), tf.ones([3, 6]),
        ...                                     tf.zeros([6]), [4, 2])]
        [TensorShape([5, 2, 4]), TensorShape([5, 2, 2])]
    """
    return [
        input_projection(x, k, b)
        for k, b in zip(split_shards(kernel, widths), split_shards(bias, widths), strict=True)
    ]


# Steps per chunk of the backward pass (see `chunked_backward`); measured on the 2-core
# machine for the char LSTM 512: 16 and 32 within 3% of each other, both faster than one
# chunk of every step.
BACKWARD_CHUNK_STEPS = 16


def chunked_backward(
    step, carry, dhs, mask, x, kernel, h0, hs, split_grads, outputs=1, recurrent_bias=False,
    chunk=None,
):  # fmt: skip
    """The backward pass of a recurrence, `chunk` steps at a time, with the weight
    gradients of each chunk as large GEMMs that overlap the next chunk's steps.

    The recurrence backwards is a chain of small operations (one `dz @ U^T` GEMM and the
    gate arithmetic per step) that leaves a core idle part of the time. After each chunk
    of steps this computes that chunk's share of the gradients of the input kernel, the
    input bias, the recurrent kernel (and bias) and the input: GEMMs over `chunk * batch`
    rows that depend on that chunk alone, so TensorFlow's executor runs them while the
    next chunk's steps go on (`parallel_iterations=2` of the outer loop). Nothing of the
    size `[time, batch, gates * units]` is ever stacked. Every chunk has `chunk` rows (the
    last one in time padded with zeros, which add nothing), so XLA compiles it too.

    What every cell shares is done here: the outputs' gradient `dhs[t]` joins the carried
    `dh` (the first carry), and at a masked step, which passed its state through, the
    carried gradients go straight back while `step` sees zeros.

    Args:
        step: `step(t, carry, prev) -> (carry, outputs)`, the backward of the gate
            arithmetic and recurrent GEMM of step `t`; `prev` holds the state each step
            started from (`prev[t]`); `outputs` a tuple of `outputs` tensors `[batch, n]`.
        carry: the carried gradients after the last step (a tuple of tensors, `dh` first).
        dhs: `[time, batch, units]`, the gradient of the hidden state after every step.
        mask: None or bool `[time, batch, 1]`.
        x: `[time, batch, in]`, the input of the input projection.
        kernel: `[in, G]`, the input kernel.
        h0, hs: the initial state `[batch, units]` and the state after every step
            `[time, batch, units]`: each step started from `[h0, hs[:-1]]`.
        split_grads: `split_grads(stacked) -> (dxw, d_inner)`: from a chunk's stacked
            outputs (`[chunk, batch, n]` each), the gradient of the input projection
            `[chunk, batch, G]` and of the recurrent pre-activation (`h @ U`, plus bias)
            `[chunk, batch, G]`, or None for `d_inner` where it equals `dxw`.
        outputs: the number of tensors `step` outputs.
        recurrent_bias: also return the recurrent bias's gradient (the GRU's).
        chunk: steps per chunk (default `BACKWARD_CHUNK_STEPS`, read at each call).

    Returns:
        `(carry, dx, dkernel, dbias, du)` and, with `recurrent_bias`, `d_recurrent_bias`:
        the carry after step 0 and the gradients of `x` `[time, batch, in]`, the kernel,
        the input bias, the recurrent kernel (and the recurrent bias).
    """
    chunk = chunk or BACKWARD_CHUNK_STEPS
    steps, batch, width = tf.unstack(tf.shape(x))
    gates = tf.shape(kernel)[1]
    chunks = (steps + chunk - 1) // chunk
    pad = chunks * chunk - steps
    x = tf.concat([x, tf.zeros([pad, batch, width], x.dtype)], 0)
    prev = tf.concat([h0[None], hs[:-1], tf.zeros([pad, batch, tf.shape(hs)[2]], hs.dtype)], 0)

    kernel_t = tf.transpose(kernel)  # once, not `transpose_b` per chunk (`recurrent_transposes`)

    def rows(tensor, start):
        return flat(tf.slice(tensor, [start, 0, 0], [chunk, -1, -1]))

    def outer(c, carry, dk, db, du, dbr, dx_ta):
        start = c * chunk
        end = tf.minimum(start + chunk, steps)
        # `chunk` places; those of steps past the end stay unwritten and stack as zeros.
        arrays = tuple(tf.TensorArray(x.dtype, size=chunk) for _ in range(outputs))

        def inner(t, carry, arrays):
            carry = (carry[0] + dhs[t], *carry[1:])
            if mask is not None:
                # A masked row: `step` sees zero gradients (so its outputs there are
                # zero), and the carried gradients pass through unchanged.
                m = mask[t]
                passed = carry
                carry = tuple(tf.where(m, g, 0.0) for g in carry)
            carry, out = step(t, carry, prev)
            if mask is not None:
                carry = tuple(tf.where(m, g, p) for g, p in zip(carry, passed, strict=True))
            return t - 1, carry, tuple(a.write(t - start, o) for a, o in zip(arrays, out))

        _, carry, arrays = tf.while_loop(lambda t, *_: t >= start, inner, (end - 1, carry, arrays))
        dxw, d_inner = split_grads(tuple(a.stack() for a in arrays))
        dxw = tf.reshape(dxw, [-1, gates])
        dk = dk + tf.matmul(rows(x, start), dxw, transpose_a=True)
        db = db + tf.reduce_sum(dxw, 0)
        dx = tf.matmul(dxw, kernel_t)
        dx_ta = dx_ta.write(c, tf.reshape(dx, [chunk, batch, width]))
        d_inner = dxw if d_inner is None else flat(d_inner)
        du = du + tf.matmul(rows(prev, start), d_inner, transpose_a=True)
        if recurrent_bias:
            dbr = dbr + tf.reduce_sum(d_inner, 0)
        return c - 1, carry, dk, db, du, dbr, dx_ta

    zeros = (
        tf.zeros_like(kernel),
        tf.zeros([gates], x.dtype),
        tf.zeros([tf.shape(hs)[2], gates], x.dtype),
        tf.zeros([gates], x.dtype),
    )
    dx_ta = tf.TensorArray(x.dtype, size=chunks)
    _, carry, dk, db, du, dbr, dx_ta = tf.while_loop(
        lambda c, *_: c >= 0,
        outer,
        (chunks - 1, carry, *zeros, dx_ta),
        parallel_iterations=2,
    )
    dx = tf.reshape(dx_ta.stack(), [-1, batch, width])[:steps]
    grads = (carry, dx, dk, db, du)
    return (*grads, dbr) if recurrent_bias else grads


def time_major_mask(mask, go_backwards):
    """A `[batch, time]` mask as bool `[time, batch, 1]` (reversed for `go_backwards`)."""
    if mask is None:
        return None
    mask = tf.cast(mask, tf.bool)
    if mask.shape.rank == 3:
        mask = mask[:, :, 0]
    mask = tf.transpose(mask)[:, :, None]
    return tf.reverse(mask, [0]) if go_backwards else mask


def flat(x):
    """`[time, batch, n]` -> `[time * batch, n]`."""
    return tf.reshape(x, [-1, tf.shape(x)[-1]])


def zeros_if_none(grad, like):
    return tf.zeros_like(like) if grad is None else grad


def outputs_from_states(hs, mask, zero_output_for_mask):
    """Keras's outputs from the carried hidden states `hs` `[time, batch, units]`.

    Keras's loop outputs at a masked step the previous output (zero before the first valid
    step), or zero when `zero_output_for_mask`; the carried state itself starts from the
    initial state, so the two differ only before the first valid step.
    """
    if mask is None:
        return hs
    if zero_output_for_mask:
        return tf.where(mask, hs, tf.zeros_like(hs))
    seen = tf.cast(tf.math.cumsum(tf.cast(mask, tf.int32), axis=0) > 0, tf.bool)
    return tf.where(seen, hs, tf.zeros_like(hs))


def keep_keras_class_name(cls, stock):
    """Gives the fast layer class the `__name__` of Keras's (`"LSTM"`) and returns it.

    Keras keys the layers of a list (a functional model's layers, `CharLM.recurrent_layers`)
    in `.keras` and `.weights.h5` files by `snake_case(class name)`, and names unnamed
    layers the same way: with Keras's class name, files written with stock layers load
    into fast ones and back. The registered name (`textrnn>FastLSTM`, what configs store)
    and `repr` keep the fast name.
    """
    cls._fast_name = cls.__name__
    cls.__name__ = cls.__qualname__ = stock.__name__
    return cls


def xla_compatible(model):
    """Switches the fast layers of `model` to operations XLA compiles, so that Keras
    accepts `model.jit_compile = True` (`FastLSTM`'s gate gradient then runs as plain ops
    instead of TensorFlow's fused `LSTMBlockCellGrad`, measured 8% slower on 2 CPU cores).

    Args:
        model: a Keras model or layer.

    Returns:
        The number of layers switched.

    Example:
        >>> from textrnn.layers.fast_lstm import FastLSTM
        >>> layer = FastLSTM(4)
        >>> layer.supports_jit, xla_compatible(layer), layer.supports_jit
        (False, 1, True)
    """
    switched = 0
    for layer in model._flatten_layers():
        if isinstance(layer, FastRecurrentMixin) and layer.fused_kernels:
            layer.fused_kernels = False
            layer.supports_jit = True
            switched += 1
    return switched


class FastRecurrentMixin:
    """Replaces Keras's `inner_loop` by the fast path where it applies.

    A subclass provides `_fast_cell_blocker()` (a reason or None), `_fast_projection()`
    (the input kernel and bias or None), and
    `_fast_recurrence(x, kernel, bias, initial_state, mask, training)` (`x` the time-major
    inputs, `bias` zeros for a layer without one) returning
    `(hs [time, batch, units], final_states)`. In training the recurrence has the
    hand-written gradient; at inference it is the forward loop alone (plain ops, so a
    SavedModel holds no custom gradient, and nothing is kept for a backward pass).

    Setting `layer.fast_path = False` (not saved in the config) runs Keras's loop.
    `xla_compatible(model)` keeps to operations XLA compiles.
    """

    fast_path = True
    # TensorFlow kernels without an XLA kernel in use (`FastLSTM`); see `xla_compatible`.
    fused_kernels = False

    def __repr__(self):
        return f"<{self._fast_name} name={self.name}, built={self.built}>"

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if isinstance(mask, (list, tuple)) and len(mask) == 1:
            mask = mask[0]
        if fast_path_blocker(self, training, mask) is not None:
            return super().inner_loop(sequences, initial_state, mask=mask, training=training)
        if not isinstance(initial_state, (list, tuple)):
            initial_state = [initial_state]
        dropout_mask = None
        if training and self._fast_uses_dropout():
            # RNN.call has made the cell's mask for this batch; Keras's loop applies it to
            # the input of every step.
            dropout_mask = self.cell.get_dropout_mask(sequences[:, 0, :])
        kernel, bias = self._fast_projection()
        if bias is None:
            bias = tf.zeros(tf.shape(kernel)[1:], kernel.dtype)
        if self.go_backwards:
            sequences = tf.reverse(sequences, [1])
        x = time_major_inputs(sequences, dropout_mask)
        mask_tm = time_major_mask(mask, self.go_backwards)
        hs, states = self._fast_recurrence(
            x, kernel, bias, list(initial_state), mask_tm, bool(training)
        )
        outputs = outputs_from_states(hs, mask_tm, self.zero_output_for_mask)
        last_output = outputs[-1]
        if self.return_sequences:
            outputs = tf.transpose(outputs, [1, 0, 2])
        else:
            outputs = last_output[:, None, :]
        return last_output, outputs, states

    def _fast_uses_dropout(self):
        return 0.0 < self.cell.dropout < 1.0
