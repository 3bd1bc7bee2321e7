"""Greedy search and sampling: one hypothesis per row, plus the logit filters they use.

`textrnn.decoding.decode` validates its arguments and calls `greedy_or_sample` for the
`Greedy` and `Sampling` strategies; `filter_logits` and `apply_repetition_penalty` are
public so that other code (and tests) can use the exact same truncation.
"""

from typing import NamedTuple

import tensorflow as tf

from textrnn.decoding.loop_helpers import (
    NEG_INF,
    DecodeResult,
    call_step,
    check_end_ids,
    forbid_end,
    is_end,
    log_softmax_or_neg_inf,
    mask_forbidden,
    vocab_size_of,
)
from textrnn.decoding.strategies import GREEDY_TEMPERATURE, Greedy, is_real
from textrnn.text.special_tokens import PAD_ID


def filter_logits(logits, top_k=0, top_p=1.0):
    """Keeps the top-k / nucleus support of each row and sets every other logit to -inf.

    Ties are broken by the lower token id, so exactly `top_k` tokens survive top-k. Top-p
    then keeps, in decreasing probability, each token whose preceding mass (under the
    distribution renormalised after top-k) is still below `top_p`: the smallest set whose
    mass reaches `top_p`, never empty.

    Args:
        logits: float `[..., vocab]`.
        top_k: int or scalar int tensor; 0 (or less) keeps all.
        top_p: float or scalar float tensor in (0, 1]; 1.0 keeps all.

    Returns:
        A tensor like `logits`, with `-inf` outside the kept support.

    Example:
        >>> filter_logits(tf.math.log([[0.5, 0.3, 0.2]]), top_p=0.7).numpy()
        array([[-0.6931472, -1.2039728,       -inf]], dtype=float32)
    """
    logits = tf.convert_to_tensor(logits)
    if not tf.is_tensor(top_k) and top_k <= 0 and not tf.is_tensor(top_p) and top_p >= 1.0:
        return logits
    if tf.is_tensor(top_k) or tf.is_tensor(top_p):
        # Values known only at run time (a serving signature's inputs): skip the sort
        # when they turn off both filters, the common case, instead of paying it per step.
        active = (tf.cast(top_k, tf.int32) > 0) | (tf.cast(top_p, tf.float32) < 1.0)
        return tf.cond(active, lambda: _truncate(logits, top_k, top_p), lambda: logits)
    return _truncate(logits, top_k, top_p)


def _truncate(logits, top_k, top_p):
    vocab = vocab_size_of(logits)
    # A full descending sort (stable: ties keep the lower id first) with a static `k`, so
    # dynamic `top_k` values also work under XLA.
    sorted_logits, order = tf.math.top_k(logits, k=vocab)
    rank = tf.range(vocab)
    keep = tf.ones_like(sorted_logits, tf.bool)
    if tf.is_tensor(top_k) or top_k > 0:
        k = tf.cast(top_k, tf.int32)
        keep = (rank < k) | (k <= 0)
        keep = tf.broadcast_to(keep, tf.shape(sorted_logits))
    if tf.is_tensor(top_p) or top_p < 1.0:
        p = tf.cast(top_p, tf.float32)
        probs = tf.nn.softmax(tf.cast(tf.where(keep, sorted_logits, NEG_INF), tf.float32))
        mass_before = tf.math.cumsum(probs, axis=-1, exclusive=True)
        keep &= (mass_before < p) | (p >= 1.0)
    kept_count = tf.reduce_sum(tf.cast(keep, tf.int32), -1, keepdims=True)
    # Rank of every original id = inverse permutation of `order`; kept = rank < count.
    id_rank = tf.argsort(order, axis=-1)
    return tf.where(id_rank < kept_count, logits, tf.cast(NEG_INF, logits.dtype))


def apply_repetition_penalty(logits, generated, penalty):
    """CTRL repetition penalty (Keskar et al., 2019) on the tokens already generated.

    Args:
        logits: float `[N, vocab]`.
        generated: bool `[N, vocab]`, True for ids the row already generated.
        penalty: number or scalar tensor `> 0`; 1.0 changes nothing.

    Returns:
        `logits` with positive entries divided and negative entries multiplied by
        `penalty` where `generated` is True.
    """
    penalty = tf.cast(penalty, logits.dtype)
    penalised = tf.where(logits > 0, logits / penalty, logits * penalty)
    return tf.where(generated, penalised, logits)


def _picker(strategy):
    """Returns `pick(logits, t, generated) -> ids [N] int32` for greedy or sampling."""

    def greedy(logits, t, generated):
        return tf.argmax(logits, axis=-1, output_type=tf.int32)

    if isinstance(strategy, Greedy):
        return greedy
    s = strategy

    def sample(logits, t, generated):
        if generated is not None and tf.is_tensor(s.repetition_penalty):
            logits = tf.cond(
                tf.not_equal(tf.cast(s.repetition_penalty, logits.dtype), 1.0),
                lambda: apply_repetition_penalty(logits, generated, s.repetition_penalty),
                lambda: logits,
            )
        elif generated is not None:
            logits = apply_repetition_penalty(logits, generated, s.repetition_penalty)
        if is_real(s.temperature) and s.temperature < GREEDY_TEMPERATURE:
            return greedy(logits, t, generated)
        temperature = tf.cast(s.temperature, tf.float32)
        use_greedy = temperature < GREEDY_TEMPERATURE
        scaled = logits / tf.where(use_greedy, 1.0, temperature)
        scaled = filter_logits(scaled, s.top_k, s.top_p)
        # int32 seeds: XLA's stateless multinomial accepts no other seed type.
        seed = tf.stack([tf.cast(s.seed, tf.int32), tf.cast(t, tf.int32)])
        sampled = tf.random.stateless_categorical(scaled, 1, seed, dtype=tf.int32)[:, 0]
        if is_real(s.temperature):
            return sampled
        return tf.where(use_greedy, greedy(logits, t, generated), sampled)

    return sample


def _penalises_repetition(strategy):
    penalty = getattr(strategy, "repetition_penalty", 1.0)
    return tf.is_tensor(penalty) or penalty != 1.0


class _SingleCarry(NamedTuple):
    t: tf.Tensor  # number of steps done
    ids: tf.Tensor  # [batch] next input ids
    state: object
    done: tf.Tensor  # [batch] bool
    lengths: tf.Tensor  # [batch] int32
    scores: tf.Tensor  # [batch] float32
    generated: object  # [batch, vocab] bool, or () without repetition penalty
    tokens: tf.TensorArray  # [batch] per step
    attention: object  # TensorArray of [batch, src], or ()


def greedy_or_sample(step_fn, initial_state, start_ids, strategy, context, options):
    """The greedy / sampling loop behind `decode` (arguments already validated there)."""
    pick = _picker(strategy)
    end_ids = options.end_ids

    def update(carry, logits, new_state, attention):
        t, done = carry.t, carry.done
        logits = mask_forbidden(logits, options.forbidden_ids)
        log_probs = log_softmax_or_neg_inf(logits)
        generated = carry.generated if _penalises_repetition(strategy) else None
        pickable = forbid_end(logits, end_ids, t, options.min_length)
        # A row with nothing it may emit stops here (score -inf) instead of sampling
        # from an all -inf row.
        can_emit = tf.reduce_any(pickable > NEG_INF, axis=-1)
        tokens = pick(tf.where(can_emit[:, None], pickable, 0.0), t, generated)
        tokens = tf.where(done | ~can_emit, PAD_ID, tokens)
        token_log_probs = tf.where(can_emit, tf.gather(log_probs, tokens, batch_dims=1), NEG_INF)
        scores = carry.scores + tf.where(done, 0.0, token_log_probs)
        lengths = carry.lengths + tf.cast(~done & can_emit, tf.int32)
        new_done = done | ~can_emit | is_end(tokens, end_ids) | (t + 1 >= options.caps)
        if generated is not None:
            generated = generated | (tf.one_hot(tokens, vocab_size_of(logits)) > 0)
        else:
            generated = ()
        attention_ta = carry.attention
        if attention is not None:
            attention_ta = attention_ta.write(t, tf.where(done[:, None], 0.0, attention))
        return _SingleCarry(
            t + 1,
            tokens,
            new_state,
            new_done,
            lengths,
            scores,
            generated,
            carry.tokens.write(t, tokens),
            attention_ta,
        )

    # Step 0 runs before the loop: its outputs tell whether `step_fn` returns attention.
    logits, state, attention = call_step(step_fn, start_ids, initial_state, context)
    vocab = vocab_size_of(logits)
    check_end_ids(end_ids, vocab, options.forbidden_ids)
    batch = tf.shape(start_ids)[0]
    carry = _SingleCarry(
        t=tf.constant(0),
        ids=start_ids,
        state=(),
        done=tf.zeros([batch], tf.bool),
        lengths=tf.zeros([batch], tf.int32),
        scores=tf.zeros([batch], tf.float32),
        generated=(
            tf.zeros(tf.stack([batch, vocab]), tf.bool) if _penalises_repetition(strategy) else ()
        ),
        tokens=tf.TensorArray(tf.int32, size=options.max_length, element_shape=start_ids.shape),
        attention=(
            tf.TensorArray(tf.float32, size=options.max_length, element_shape=attention.shape)
            if attention is not None
            else ()
        ),
    )
    carry = update(carry, logits, state, attention)

    def cond(carry):
        return (carry.t < options.max_length) & ~tf.reduce_all(carry.done)

    def body(carry):
        logits, new_state, attention = call_step(step_fn, carry.ids, carry.state, context)
        return (update(carry, logits, new_state, attention),)

    (carry,) = tf.while_loop(cond, body, (carry,))

    # Unwritten steps (after an early stop) read as zeros = PAD_ID; mask anyway.
    ids = tf.transpose(carry.tokens.stack())  # [batch, max_length]
    valid = tf.sequence_mask(carry.lengths, tf.shape(ids)[1])
    ids = tf.where(valid, ids, PAD_ID)
    attention = None
    if isinstance(carry.attention, tf.TensorArray):
        attention = tf.transpose(carry.attention.stack(), [1, 0, 2])[:, None]
    return DecodeResult(
        ids=ids[:, None],
        lengths=carry.lengths[:, None],
        scores=carry.scores[:, None],
        normalized_scores=carry.scores[:, None],
        attention=attention,
    )
