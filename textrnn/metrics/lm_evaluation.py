"""Language-model evaluation protocols, in nats per character.

Two protocols, because they answer different questions:

- `window_loss`: nanoGPT's protocol. The mean loss over random windows of `seq_len`
  characters, each scored from a zero state with only the context inside its window
  (so the first positions of every window are scored with almost no context).
- `sequential_loss`: one pass over the whole text, carrying the recurrent state, so
  every character is scored with all the text before it.

Both are token-weighted means of -log p(next char); divide by ln 2 for bits per char.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf


def _check_ids(ids, need):
    ids = np.asarray(ids, dtype=np.int32).reshape(-1)
    if ids.size < need:
        raise ValueError(f"Need at least {need} ids to evaluate. Received: {ids.size}")
    return ids


def window_offsets(num_ids: int, seq_len: int, num_windows: int, seed: int = 0) -> np.ndarray:
    """Random window start offsets, reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, num_ids - seq_len - 1, size=num_windows)


def window_loss(model, ids, seq_len=256, num_windows=1000, seed=0, batch_size=64) -> float:
    """Mean NLL over random windows scored from a zero state (nanoGPT's protocol).

    Args:
        model: a model whose `call(inputs)` returns logits `[batch, time, vocab]`.
        ids: 1-D int ids of the text.
        seq_len: window length (nanoGPT uses 256 for shakespeare_char).
        num_windows: how many random windows to score.
        seed: seed for the window offsets.
        batch_size: evaluation batch size.

    Returns:
        Mean nats per character over `num_windows * seq_len` scored positions.

    Example:
        >>> window_loss(model, val_ids, seq_len=256, num_windows=2000)
        1.47
    """
    ids = _check_ids(ids, seq_len + 2)
    offsets = window_offsets(ids.size, seq_len, num_windows, seed)
    index = offsets[:, None] + np.arange(seq_len + 1)[None, :]
    windows = ids[index]

    @tf.function(reduce_retracing=True)
    def batch_nll(x, y):
        logits = model(x, training=False)
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        return tf.reduce_sum(tf.cast(nll, tf.float64))

    total = 0.0
    for start in range(0, num_windows, batch_size):
        chunk = windows[start : start + batch_size]
        total += float(batch_nll(chunk[:, :-1], chunk[:, 1:]))
    return total / (num_windows * seq_len)


def sequential_loss(model, ids, chunk_len=2048) -> float:
    """Mean NLL of `ids[1:]` in one stateful pass (each char sees all text before it).

    Args:
        model: a model with `call(inputs, initial_state=..., return_state=True)` and
            `initial_state(batch_size)` (e.g. `CharLM`).
        ids: 1-D int ids of the text.
        chunk_len: characters processed per call; the state carries across chunks.

    Returns:
        Mean nats per character over `len(ids) - 1` scored positions.
    """
    ids = _check_ids(ids, 2)

    @tf.function(reduce_retracing=True)
    def chunk_nll(x, y, state):
        logits, state = model(x, initial_state=state, training=False, return_state=True)
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        return tf.reduce_sum(tf.cast(nll, tf.float64)), state

    state = model.initial_state(1)
    total = 0.0
    for start in range(0, ids.size - 1, chunk_len):
        x = ids[start : min(start + chunk_len, ids.size - 1)]
        y = ids[start + 1 : start + 1 + x.size]
        nll, state = chunk_nll(x[None, :], y[None, :], state)
        total += float(nll)
    return total / (ids.size - 1)


def bits_per_char(nats: float) -> float:
    """Converts nats per character to bits per character."""
    return nats / math.log(2.0)
