"""Decoding loops for recurrent models: greedy search, beam search and sampling.

A model is a *cell*: `step_fn(token_ids, state, context)` computes one step. This module
owns time: `decode` runs the step function inside one `tf.while_loop`, so the same code
runs eagerly, inside `tf.function`, inside a SavedModel served by stock TensorFlow Serving
(core ops only, beam back-tracking with plain gathers) and, when `max_length` is a Python
int, under XLA (`jit_compile=True`).

Two independent axes, as in OpenNMT-tf: a *strategy* says how hypotheses are organised
(`Greedy`, `BeamSearch`, `Sampling`), and the shared loop handles the rest (end ids,
minimum length, per-row length caps, scores, attention). The strategies live in
`textrnn.decoding.strategies`, the loops in `textrnn.decoding.sampling` (greedy and
sampling, with `filter_logits`) and `textrnn.decoding.beam_search`, what both loops share
in `textrnn.decoding.loop_helpers`.

Example:
    >>> result = decode(model.step, state, start_ids, BeamSearch(width=4, n_best=2), 50)
    >>> result.ids.shape  # [batch, n_best, max_length]
    TensorShape([8, 2, 50])
"""

import tensorflow as tf

from textrnn.decoding.beam_search import beam_search
from textrnn.decoding.loop_helpers import LoopOptions, row_caps
from textrnn.decoding.sampling import greedy_or_sample
from textrnn.decoding.strategies import BeamSearch, Greedy, Sampling, check_int, is_int, is_real
from textrnn.text.special_tokens import EOS_ID


def decode(
    step_fn,
    initial_state,
    start_ids,
    strategy,
    max_length,
    *,
    min_length=0,
    end_ids=(EOS_ID,),
    forbidden_ids=(),
    context=None,
    source_lengths=None,
    max_length_ratio=None,
    max_length_offset=10,
    capacity=None,
):
    """Generates token ids from a one-step function inside a single `tf.while_loop`.

    Runs eagerly (the loop then runs step by step in Python), inside `tf.function`, in a
    SavedModel and under `jit_compile=True` when the output length is static: a Python
    int `max_length`, or a tensor `max_length` with a Python int `capacity`. Wrap the
    call in `tf.function` for speed.

    Beam search stops a row early only when it is provably safe: a live hypothesis with
    log-probability `s <= 0` can only end with a log-probability `<= s`, at a length `L`
    between the next step and the row's cap; every normaliser here is monotonic in `L`,
    so its best possible normalised score is the larger of the two ends of that range, and
    the coverage penalty is `<= 0`. The row stops once that bound cannot beat the worst
    kept finished hypothesis.

    Args:
        step_fn: `step_fn(token_ids [N] int32, state, context)` returning
            `(logits [N, vocab], new_state)` or `(logits, new_state, attention [N, src])`.
            `state` is any nested structure of tensors with leading dimension `N`; beam
            search reorders it along that dimension. `context` is passed through untouched
            (beam search tiles it to `batch * width` rows once, before the loop).
        initial_state: the state after any prompt, leading dimension `batch`.
        start_ids: int `[batch]`, the first input token of each row.
        strategy: a `Greedy`, `BeamSearch` or `Sampling` instance.
        max_length: maximum number of generated tokens: a positive Python int (static
            output shape, XLA-compatible) or a scalar int tensor (values below 1 act as 1).
        min_length: end ids get `-inf` logits while fewer than `min_length` tokens have
            been generated, so a hypothesis has at least `min_length + 1` tokens when it
            ends with an end id. Python int or scalar int tensor.
        end_ids: ids that end a hypothesis (one int or a tuple). An empty tuple never
            stops early (fixed-length generation).
        forbidden_ids: ids never to generate (one int or a tuple), e.g. padding, `<unk>`
            and `<s>`: their logits become `-inf`, so scores are log-probabilities over the
            other ids, and a beam slot that no allowed hypothesis can fill stays empty
            (length 0, score `-inf`). A row in which no id can be emitted at some step
            (every one forbidden, or blocked by `min_length`) stops there, with score
            `-inf`; nothing becomes NaN.
        context: optional nested structure of tensors with leading dimension `batch`
            (encoder outputs, source mask, ...), passed to `step_fn`.
        source_lengths: optional int `[batch]` source lengths: with `max_length_ratio`
            they cap each row, and with a coverage penalty they mask padded positions
            (without them, positions whose coverage is exactly 0 are taken as padding).
        max_length_ratio: optional positive number: row `b` generates at most
            `min(max_length, ceil(ratio * source_lengths[b]) + max_length_offset)` tokens
            (at least 1); needs `source_lengths`.
        max_length_offset: non-negative int added to the ratio cap.
        capacity: optional positive Python int, the static time dimension of the outputs.
            With it, `max_length` may change from call to call (a tensor) without
            changing any shape, which is what XLA needs to compile the loop once:
            values above `capacity` act as `capacity`, and the loop still stops as soon
            as every row is done. Without it the time dimension is `max_length`.

    Returns:
        A `DecodeResult` with `n = 1` (greedy, sampling) or `n = strategy.n_best`; its
        time dimension is `capacity` when given, else `max_length`.

    Raises:
        ValueError: for an invalid argument (naming the received value), a step function
            returning the wrong structure, or a coverage penalty without attention.

    Example:
        >>> result = decode(model.step, state, start_ids, Sampling(top_k=10, seed=1), 100,
        ...                 end_ids=())
        >>> result.ids.shape, result.lengths.shape
        (TensorShape([2, 1, 100]), TensorShape([2, 1]))
    """
    if not isinstance(strategy, (Greedy, BeamSearch, Sampling)):
        raise TypeError(
            "Expected `strategy` to be a Greedy, BeamSearch or Sampling instance "
            f"(see `make_strategy`). Received: strategy={strategy!r}"
        )
    if not callable(step_fn):
        raise TypeError(f"Expected a callable `step_fn`. Received: step_fn={step_fn!r}")
    check_int("max_length", max_length, 1, allow_tensor=True)
    check_int("min_length", min_length, 0, allow_tensor=True)
    check_int("max_length_offset", max_length_offset, 0)
    if capacity is not None:
        check_int("capacity", capacity, 1)
    if is_int(end_ids):
        end_ids = (end_ids,)
    if not isinstance(end_ids, (tuple, list)) or not all(is_int(i) and i >= 0 for i in end_ids):
        raise ValueError(
            f"Expected a tuple of non-negative ints for `end_ids`. Received: end_ids={end_ids!r}"
        )
    end_ids = tuple(int(i) for i in end_ids)
    if is_int(forbidden_ids):
        forbidden_ids = (forbidden_ids,)
    if not isinstance(forbidden_ids, (tuple, list)) or not all(
        is_int(i) and i >= 0 for i in forbidden_ids
    ):
        raise ValueError(
            "Expected a tuple of non-negative ints for `forbidden_ids`. "
            f"Received: forbidden_ids={forbidden_ids!r}"
        )
    forbidden_ids = tuple(sorted({int(i) for i in forbidden_ids}))
    if max_length_ratio is not None:
        if not is_real(max_length_ratio) or not max_length_ratio > 0:
            raise ValueError(
                "Expected a positive number for `max_length_ratio`. "
                f"Received: max_length_ratio={max_length_ratio!r}"
            )
        if source_lengths is None:
            raise ValueError(
                "`max_length_ratio` needs `source_lengths`. "
                f"Received: max_length_ratio={max_length_ratio!r}, source_lengths=None"
            )
    start_ids = tf.cast(start_ids, tf.int32)
    if start_ids.shape.rank != 1:
        raise ValueError(
            f"Expected `start_ids` of shape [batch]. Received: shape={start_ids.shape}"
        )
    if source_lengths is not None:
        source_lengths = tf.cast(source_lengths, tf.int32)
        if source_lengths.shape.rank != 1:
            raise ValueError(
                "Expected `source_lengths` of shape [batch]. "
                f"Received: shape={source_lengths.shape}"
            )
    if not is_int(max_length):
        max_length = tf.maximum(tf.cast(max_length, tf.int32), 1)
    if capacity is not None:
        max_length = (
            min(max_length, capacity) if is_int(max_length) else tf.minimum(max_length, capacity)
        )
    if not is_int(min_length):
        min_length = tf.cast(min_length, tf.int32)

    batch = tf.shape(start_ids)[0]
    caps = row_caps(batch, max_length, source_lengths, max_length_ratio, max_length_offset)
    # The loops size their buffers by `options.max_length` and stop rows at `caps`.
    buffer_length = max_length if capacity is None else capacity
    options = LoopOptions(buffer_length, min_length, end_ids, caps, source_lengths, forbidden_ids)
    if isinstance(strategy, BeamSearch):
        return beam_search(step_fn, initial_state, start_ids, strategy, context, options)
    return greedy_or_sample(step_fn, initial_state, start_ids, strategy, context, options)
