"""Beam search behind `textrnn.decoding.decode`.

Live hypotheses sit in `width` slots per row; finished ones in a separate n-best set whose
scores never change again. Hypotheses are reordered with plain gathers (no GatherTree or
other custom op), so the loop runs in stock TensorFlow Serving and under XLA.
"""

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from textrnn.decoding.loop_helpers import (
    NEG_INF,
    DecodeResult,
    call_step,
    check_end_ids,
    end_mask,
    forbid_end,
    is_end,
    log_softmax_or_neg_inf,
    mask_forbidden,
    vocab_size_of,
)
from textrnn.text.special_tokens import PAD_ID

# Coverage of a real source position is clipped here before the log (see
# `_coverage_penalty`), so a position that received no attention at all costs a large
# finite amount instead of -inf.
_TINY = float(np.finfo(np.float32).tiny)


def _normalize(log_probs, lengths, strategy):
    """The length-normalised score of `log_probs` for hypotheses of `lengths` tokens."""
    if strategy.length_penalty == "none":
        return log_probs
    lengths = tf.cast(lengths, tf.float32)
    if strategy.length_penalty == "average":
        return log_probs / lengths
    return log_probs / tf.pow((5.0 + lengths) / 6.0, tf.cast(strategy.alpha, tf.float32))


def _coverage_penalty(coverage, source_mask, beta):
    """GNMT `beta * sum_i log(min(coverage_i, 1))` over real source positions `[B, W]`."""
    clipped = tf.clip_by_value(coverage, _TINY, 1.0)
    return beta * tf.reduce_sum(tf.where(source_mask, tf.math.log(clipped), 0.0), -1)


def _banned_ngrams(sequences, t, n, vocab):
    """Bool `[N, vocab]`: ids that would repeat an n-gram of `sequences[:, :t]`.

    For every window start `j <= t - n` whose first `n - 1` tokens equal the last `n - 1`
    generated tokens, the token at `j + n - 1` is banned.
    """
    num_rows = tf.shape(sequences)[0]
    time = tf.shape(sequences)[1]
    windows = tf.maximum(time - n + 1, 0)
    match = tf.broadcast_to(tf.range(windows)[None, :] <= t - n, tf.stack([num_rows, windows]))
    for k in range(n - 1):
        last = tf.gather(sequences, tf.maximum(t - n + 1 + k, 0), axis=1)
        match &= tf.equal(sequences[:, k : k + windows], last[:, None])
    following = sequences[:, n - 1 : n - 1 + windows]
    rows = tf.broadcast_to(tf.range(num_rows)[:, None], tf.shape(following))
    indices = tf.reshape(tf.stack([rows, following], -1), [-1, 2])
    banned = tf.tensor_scatter_nd_max(
        tf.zeros(tf.stack([num_rows, vocab]), tf.int32),
        indices,
        tf.reshape(tf.cast(match, tf.int32), [-1]),
    )
    return banned > 0


class _BeamCarry(NamedTuple):
    t: tf.Tensor
    ids: tf.Tensor  # [B*W] next input ids
    state: object  # leading dim B*W
    alive_log_probs: tf.Tensor  # [B, W], -inf for empty slots
    alive_ids: tf.Tensor  # [B, W, T]
    alive_attention: object  # [B, W, T, S] or ()
    alive_coverage: object  # [B, W, S] or ()
    finished_ids: tf.Tensor  # [B, n, T]
    finished_attention: object  # [B, n, T, S] or ()
    finished_log_probs: tf.Tensor  # [B, n]
    finished_scores: tf.Tensor  # [B, n] normalised, -inf for empty slots
    finished_lengths: tf.Tensor  # [B, n]
    finished_capped: tf.Tensor  # [B, n] bool: cut at the cap without an end id
    done: tf.Tensor  # [B] bool


def beam_search(step_fn, initial_state, start_ids, strategy, context, options):
    """The beam-search loop behind `decode` (arguments already validated there)."""
    width, n_best = strategy.width, strategy.n_best
    if tf.is_tensor(width) or tf.is_tensor(n_best):
        width = tf.cast(width, tf.int32)
        n_best = tf.cast(n_best, tf.int32)
        checks = [
            tf.debugging.assert_greater_equal(width, 1, message="beam width must be >= 1"),
            tf.debugging.assert_greater_equal(n_best, 1, message="n_best must be >= 1"),
            tf.debugging.assert_less_equal(n_best, width, message="n_best must be <= width"),
        ]
        with tf.control_dependencies(checks):
            width, n_best = tf.identity(width), tf.identity(n_best)
    end_ids = options.end_ids
    batch = tf.shape(start_ids)[0]
    max_length = options.max_length
    caps = options.caps

    def tile(x):
        return None if x is None else tf.repeat(x, width, axis=0)

    # Tiled once; the loop never reorders or gathers the context.
    context = tf.nest.map_structure(tile, context)
    ids = tile(start_ids)
    state = tf.nest.map_structure(tile, initial_state)
    # Hypothesis `w` of batch row `b` lives in flat row `b * width + w`.
    row_offsets = tf.range(batch)[:, None] * width

    def update(carry, logits, new_state, attention):
        t = carry.t
        vocab = vocab_size_of(logits)
        log_probs = log_softmax_or_neg_inf(mask_forbidden(logits, options.forbidden_ids))
        log_probs = forbid_end(log_probs, end_ids, t, options.min_length)
        if strategy.capped == "force_end" and end_ids:
            # fairseq's rule: at a row's cap only an end id may follow, and it is scored.
            last_step = tf.repeat(t + 1 >= caps, width)[:, None]
            log_probs = tf.where(last_step & ~end_mask(vocab, end_ids)[None, :], NEG_INF, log_probs)
        if strategy.no_repeat_ngram_size > 0:
            flat_ids = tf.reshape(carry.alive_ids, tf.stack([batch * width, -1]))
            banned = _banned_ngrams(flat_ids, t, strategy.no_repeat_ngram_size, vocab)
            log_probs = tf.where(banned, NEG_INF, log_probs)
        candidates = carry.alive_log_probs[:, :, None] + tf.reshape(
            log_probs, tf.stack([batch, width, vocab])
        )
        ranking = _normalize(candidates, t + 1, strategy)
        if strategy.coverage_penalty > 0:
            step_attention = tf.reshape(attention, tf.stack([batch, width, -1]))
            coverage = carry.alive_coverage + step_attention
            if options.source_lengths is None:
                source_mask = coverage > 0
            else:
                source_mask = tf.sequence_mask(options.source_lengths, tf.shape(coverage)[-1])[
                    :, None, :
                ]
            penalty = _coverage_penalty(coverage, source_mask, strategy.coverage_penalty)
            ranking += penalty[:, :, None]

        flat_ranking = tf.reshape(ranking, tf.stack([batch, width * vocab]))
        top_scores, top_index = tf.math.top_k(flat_ranking, k=width)
        parents = top_index // vocab  # [B, W]
        tokens = top_index % vocab
        top_log_probs = tf.gather(
            tf.reshape(candidates, tf.stack([batch, width * vocab])), top_index, batch_dims=1
        )
        valid = top_log_probs > NEG_INF
        at_cap = (t + 1 >= caps)[:, None]
        finishing = valid & (is_end(tokens, end_ids) | at_cap)

        positions = tf.range(tf.shape(carry.alive_ids)[-1])
        at_t = positions == t
        new_ids = tf.where(
            at_t, tokens[:, :, None], tf.gather(carry.alive_ids, parents, batch_dims=1)
        )
        new_attention = ()
        if attention is not None:
            step_attention = tf.gather(
                tf.reshape(attention, tf.stack([batch, width, -1])), parents, batch_dims=1
            )
            new_attention = tf.where(
                at_t[:, None],
                step_attention[:, :, None, :],
                tf.gather(carry.alive_attention, parents, batch_dims=1),
            )

        # Merge the hypotheses that end now into the finished n-best. `top_k` is stable,
        # so on ties the earlier finished hypothesis stays first.
        merged_scores = tf.concat(
            [carry.finished_scores, tf.where(finishing, top_scores, NEG_INF)], 1
        )
        merged_capped = tf.concat([carry.finished_capped, at_cap & ~is_end(tokens, end_ids)], 1)
        if strategy.capped == "rank_last":
            # Sort by score, then (stably) by tier: ended, cut at the cap, empty.
            _, by_score = tf.math.top_k(merged_scores, k=n_best + width)
            tier = tf.where(merged_scores > NEG_INF, tf.where(merged_capped, 1.0, 2.0), 0.0)
            _, by_tier = tf.math.top_k(tf.gather(tier, by_score, batch_dims=1), k=n_best)
            pick = tf.gather(by_score, by_tier, batch_dims=1)
            finished_scores = tf.gather(merged_scores, pick, batch_dims=1)
        else:
            finished_scores, pick = tf.math.top_k(merged_scores, k=n_best)

        def merge(finished, new):
            return tf.gather(tf.concat([finished, new], 1), pick, batch_dims=1)

        finished_ids = merge(carry.finished_ids, new_ids)
        finished_log_probs = merge(carry.finished_log_probs, top_log_probs)
        finished_lengths = merge(carry.finished_lengths, tf.fill(tf.shape(tokens), t + 1))
        finished_capped = tf.gather(merged_capped, pick, batch_dims=1)
        finished_attention = ()
        if attention is not None:
            finished_attention = merge(carry.finished_attention, new_attention)

        alive_log_probs = tf.where(finishing | ~valid, NEG_INF, top_log_probs)
        flat_parents = tf.reshape(parents + row_offsets, [-1])
        new_state = tf.nest.map_structure(lambda s: tf.gather(s, flat_parents), new_state)
        alive_coverage = ()
        if strategy.coverage_penalty > 0:
            alive_coverage = tf.gather(coverage, parents, batch_dims=1)

        # Early stop (see `decode`): the best any live hypothesis can still reach.
        best_alive = tf.reduce_max(alive_log_probs, 1)
        bound = tf.maximum(
            _normalize(best_alive, t + 2, strategy), _normalize(best_alive, caps, strategy)
        )
        cannot_improve = bound <= tf.gather(finished_scores, n_best - 1, axis=1)
        done = carry.done | at_cap[:, 0] | cannot_improve
        alive_log_probs = tf.where(done[:, None], NEG_INF, alive_log_probs)

        return _BeamCarry(
            t=t + 1,
            ids=tf.reshape(tokens, [-1]),
            state=new_state,
            alive_log_probs=alive_log_probs,
            alive_ids=new_ids,
            alive_attention=new_attention,
            alive_coverage=alive_coverage,
            finished_ids=finished_ids,
            finished_attention=finished_attention,
            finished_log_probs=finished_log_probs,
            finished_scores=finished_scores,
            finished_lengths=finished_lengths,
            finished_capped=finished_capped,
            done=done,
        )

    logits, new_state, attention = call_step(step_fn, ids, state, context)
    check_end_ids(end_ids, vocab_size_of(logits), options.forbidden_ids)
    if strategy.coverage_penalty > 0 and attention is None:
        raise ValueError(
            "A coverage penalty needs attention: `step_fn` must return "
            "(logits, new_state, attention). Received: coverage_penalty="
            f"{strategy.coverage_penalty!r} and a step_fn without attention"
        )
    time_shape = tf.stack([batch, width, max_length])
    source_shape = None if attention is None else tf.shape(attention)[-1]
    # All beams start identical: only the first one is live, or the first step would
    # return `width` copies of the same expansion.
    first_alive = tf.where(
        tf.range(width)[None, :] == 0, 0.0, tf.fill(tf.stack([batch, width]), NEG_INF)
    )
    carry = _BeamCarry(
        t=tf.constant(0),
        ids=ids,
        state=(),
        alive_log_probs=first_alive,
        alive_ids=tf.fill(time_shape, PAD_ID),
        alive_attention=(
            () if attention is None else tf.zeros(tf.concat([time_shape, [source_shape]], 0))
        ),
        alive_coverage=(
            tf.zeros(tf.stack([batch, width, source_shape]))
            if strategy.coverage_penalty > 0
            else ()
        ),
        finished_ids=tf.fill(tf.stack([batch, n_best, max_length]), PAD_ID),
        finished_attention=(
            ()
            if attention is None
            else tf.zeros(tf.stack([batch, n_best, max_length, source_shape]))
        ),
        finished_log_probs=tf.fill(tf.stack([batch, n_best]), NEG_INF),
        finished_scores=tf.fill(tf.stack([batch, n_best]), NEG_INF),
        finished_lengths=tf.zeros(tf.stack([batch, n_best]), tf.int32),
        finished_capped=tf.zeros(tf.stack([batch, n_best]), tf.bool),
        done=tf.zeros([batch], tf.bool),
    )
    carry = update(carry, logits, new_state, attention)

    def cond(carry):
        return (carry.t < max_length) & ~tf.reduce_all(carry.done)

    def body(carry):
        logits, new_state, attention = call_step(step_fn, carry.ids, carry.state, context)
        return (update(carry, logits, new_state, attention),)

    (carry,) = tf.while_loop(cond, body, (carry,))
    return DecodeResult(
        ids=carry.finished_ids,
        lengths=carry.finished_lengths,
        scores=carry.finished_log_probs,
        normalized_scores=carry.finished_scores,
        attention=None if attention is None else carry.finished_attention,
    )
