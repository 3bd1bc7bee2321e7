"""What the greedy/sampling loop and the beam-search loop share: the result type, the
call of the step function, end-id handling and per-row length caps."""

from typing import NamedTuple

import tensorflow as tf

from textrnn.decoding.strategies import is_int

NEG_INF = float("-inf")


class DecodeResult(NamedTuple):
    """What `decode` returns; `n` is 1 for greedy/sampling and `n_best` for beam search.

    Attributes:
        ids: int32 `[batch, n, max_length]`, `PAD_ID` after each hypothesis' end.
        lengths: int32 `[batch, n]`, number of generated tokens, the end token included
            when one was produced.
        scores: float32 `[batch, n]`, sum of the model's log-probabilities (log-softmax of
            the step function's logits) of the returned tokens.
        normalized_scores: float32 `[batch, n]`, the score hypotheses are ranked by (length
            and coverage penalties applied); equal to `scores` for greedy and sampling.
        attention: float32 `[batch, n, max_length, src_len]` (zeros after the end), or
            `None` when the step function returns no attention.

    Hypotheses are sorted best first. A beam-search slot that could not be filled (every
    continuation was blocked) has length 0, only `PAD_ID` and score `-inf`.
    """

    ids: tf.Tensor
    lengths: tf.Tensor
    scores: tf.Tensor
    normalized_scores: tf.Tensor
    attention: tf.Tensor | None


def call_step(step_fn, token_ids, state, context):
    """Calls `step_fn` and returns `(logits float32, new_state, attention or None)`."""
    outputs = step_fn(token_ids, state, context)
    if not isinstance(outputs, (tuple, list)) or len(outputs) not in (2, 3):
        raise ValueError(
            "Expected `step_fn` to return (logits, new_state) or "
            f"(logits, new_state, attention). Received: {type(outputs).__name__} "
            f"of length {len(outputs) if isinstance(outputs, (tuple, list)) else 'n/a'}"
        )
    logits = tf.cast(outputs[0], tf.float32)
    if logits.shape.rank != 2:
        raise ValueError(
            f"Expected `step_fn` logits of shape [N, vocab]. Received: shape={logits.shape}"
        )
    attention = None
    if len(outputs) == 3 and outputs[2] is not None:
        attention = tf.cast(outputs[2], tf.float32)
        if attention.shape.rank != 2:
            raise ValueError(
                "Expected `step_fn` attention of shape [N, src_len]. "
                f"Received: shape={attention.shape}"
            )
    return logits, outputs[1], attention


def vocab_size_of(logits):
    return logits.shape[-1] if logits.shape[-1] is not None else tf.shape(logits)[-1]


def end_mask(vocab, end_ids):
    """Boolean `[vocab]`, True at the end ids."""
    return tf.reduce_any(tf.equal(tf.range(vocab)[:, None], tf.constant(end_ids)[None, :]), 1)


def forbid_end(scores, end_ids, t, min_length):
    """Sets end-id columns to -inf while fewer than `min_length` tokens were generated."""
    if not end_ids or (is_int(min_length) and min_length == 0):
        return scores
    blocked = end_mask(vocab_size_of(scores), end_ids) & (t < min_length)
    return tf.where(blocked, NEG_INF, scores)


def is_end(tokens, end_ids):
    if not end_ids:
        return tf.zeros_like(tokens, tf.bool)
    return tf.reduce_any(tf.equal(tokens[..., None], tf.constant(end_ids)), -1)


def row_caps(batch, max_length, source_lengths, ratio, offset):
    """Per-row cap `min(max_length, ceil(ratio * source_length) + offset)`, at least 1."""
    caps = tf.fill([batch], max_length)
    if ratio is not None:
        lengths = tf.cast(source_lengths, tf.float64)
        # The epsilon keeps ratio * length = 12.000000000000002 from rounding up to 13.
        scaled = tf.math.ceil(float(ratio) * lengths - 1e-9) + float(offset)
        caps = tf.minimum(caps, tf.cast(scaled, tf.int32))
    return tf.maximum(caps, 1)


class LoopOptions(NamedTuple):
    max_length: object  # Python int or int32 scalar tensor
    min_length: object
    end_ids: tuple
    caps: tf.Tensor  # [batch] int32
    source_lengths: tf.Tensor | None
    forbidden_ids: tuple = ()


def check_end_ids(end_ids, vocab, forbidden_ids=()):
    for name, ids in (("end_ids", end_ids), ("forbidden_ids", forbidden_ids)):
        if ids and is_int(vocab) and max(ids) >= vocab:
            raise ValueError(
                f"Expected `{name}` below the vocabulary size {vocab}. Received: {name}={ids!r}"
            )
    if is_int(vocab) and len(set(forbidden_ids)) >= vocab:
        raise ValueError(
            f"`forbidden_ids` forbid every id of the vocabulary ({vocab}). "
            f"Received: forbidden_ids={forbidden_ids!r}"
        )


def mask_forbidden(logits, forbidden_ids):
    """Sets the forbidden ids' logits to -inf: they have probability 0 and are never picked."""
    if not forbidden_ids:
        return logits
    return tf.where(end_mask(vocab_size_of(logits), forbidden_ids)[None, :], NEG_INF, logits)


def log_softmax_or_neg_inf(logits):
    """`log_softmax` by row; a row without any finite logit (every id forbidden or blocked)
    is all -inf instead of NaN."""
    any_finite = tf.reduce_any(logits > NEG_INF, axis=-1, keepdims=True)
    return tf.where(any_finite, tf.nn.log_softmax(tf.where(any_finite, logits, 0.0)), NEG_INF)
