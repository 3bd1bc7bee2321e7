"""The machinery shared by `FastLSTM`, `FastGRU` and `FastSimpleRNN`.

The three layers subclass Keras's `LSTM`, `GRU` and `SimpleRNN` and replace only the
sequence computation (`inner_loop`); weights, `.cell`, configuration, masks, states,
`go_backwards`, `return_sequences` / `return_state` and `Bidirectional` are Keras's own.

The fast path (CPU, TensorFlow backend):

1. the input projection of every step at once, one GEMM `[time * batch, in] @ kernel`
   (plus the input bias), before the loop; input dropout, which Keras applies with the
   same mask at every step, multiplies the inputs before that GEMM;
2. a `tf.while_loop` holding only `h @ recurrent_kernel` and the gate arithmetic;
3. a hand-written backward (`tf.custom_gradient`) that runs the recurrence backwards with
   one GEMM per step (`dz @ recurrent_kernel^T`) and computes the recurrent kernel's
   gradient for all steps at once, `h_prev^T @ dz` over `time * batch` rows; the kernel's
   and the input's gradients come from autodiff of the GEMM of step 1 (large GEMMs too).
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


def input_projection(sequences, kernel, bias, dropout_mask=None):
    """`x @ kernel + bias` for every step at once, time-major.

    Args:
        sequences: `[batch, time, in]`.
        kernel: `[in, gates * units]`.
        bias: `[gates * units]` or None.
        dropout_mask: optional `[batch, in]`, the same at every step.

    Returns:
        `[time, batch, gates * units]`.
    """
    if dropout_mask is not None:
        sequences = sequences * dropout_mask[:, None, :]
    x = tf.transpose(sequences, [1, 0, 2])
    shape = tf.shape(x)
    flat = tf.matmul(tf.reshape(x, [-1, shape[2]]), kernel)
    if bias is not None:
        flat = flat + bias
    return tf.reshape(flat, tf.concat([shape[:2], tf.shape(kernel)[1:]], 0))


def time_major_mask(mask, go_backwards):
    """A `[batch, time]` mask as bool `[time, batch, 1]` (reversed for `go_backwards`)."""
    if mask is None:
        return None
    mask = tf.cast(mask, tf.bool)
    if mask.shape.rank == 3:
        mask = mask[:, :, 0]
    mask = tf.transpose(mask)[:, :, None]
    return tf.reverse(mask, [0]) if go_backwards else mask


def previous_states(h0, hs):
    """`[h0, h_0, ..., h_{T-2}]` flattened to `[time * batch, units]`: each step's input
    state, the left factor of the recurrent kernel's gradient."""
    prev = tf.concat([h0[None], hs[:-1]], 0)
    return tf.reshape(prev, [-1, tf.shape(prev)[-1]])


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


class FastRecurrentMixin:
    """Replaces Keras's `inner_loop` by the fast path where it applies.

    A subclass provides `_fast_cell_blocker()` (a reason or None), `_fast_projection()`
    (the input kernel and bias), and `_fast_recurrence(xw, initial_state, mask, training)`
    returning `(hs [time, batch, units], final_states)`. In training the recurrence has the
    hand-written gradient; at inference it is the forward loop alone (plain ops, so a
    SavedModel holds no custom gradient, and nothing is kept for a backward pass).

    Setting `layer.fast_path = False` (not saved in the config) runs Keras's loop.
    """

    fast_path = True
    # Independent loops over slices of the batch (see `_sharded_recurrence`): one per core
    # of this machine, at most 2 (measured on 2 cores), and none for small batches.
    batch_shards = 1

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
        if self.go_backwards:
            sequences = tf.reverse(sequences, [1])
        xw = input_projection(sequences, kernel, bias, dropout_mask)
        mask_tm = time_major_mask(mask, self.go_backwards)
        hs, states = self._sharded_recurrence(xw, list(initial_state), mask_tm, training)
        outputs = outputs_from_states(hs, mask_tm, self.zero_output_for_mask)
        last_output = outputs[-1]
        if self.return_sequences:
            outputs = tf.transpose(outputs, [1, 0, 2])
        else:
            outputs = last_output[:, None, :]
        return last_output, outputs, states

    def _sharded_recurrence(self, xw, initial_state, mask, training):
        """`_fast_recurrence` on `batch_shards` independent slices of the batch.

        Rows of a batch never interact, and the recurrence is a chain of small operations
        that one core runs at a time: independent loops over slices of the batch let
        TensorFlow's executor run them on different cores at once (the big GEMMs before
        and after the loops use every core anyway).
        """
        shards = self.batch_shards
        if shards <= 1:
            return self._fast_recurrence(xw, initial_state, mask, training)
        batch = tf.shape(xw)[1]
        sizes = tf.stack(
            [batch * i // shards - batch * (i - 1) // shards for i in range(1, shards + 1)]
        )

        def split(x, axis):
            return tf.split(x, sizes, axis=axis, num=shards)

        pieces = zip(
            split(xw, 1),
            zip(*(split(s, 0) for s in initial_state)),
            split(mask, 1) if mask is not None else [None] * shards,
        )
        results = [self._fast_recurrence(x, list(s), m, training) for x, s, m in pieces]
        hs = tf.concat([r[0] for r in results], 1)
        states = [tf.concat(parts, 0) for parts in zip(*(r[1] for r in results))]
        return hs, states

    def _fast_uses_dropout(self):
        return 0.0 < self.cell.dropout < 1.0
