"""Decoding loops for recurrent models: greedy search, beam search and sampling.

A model is a *cell*: `step_fn(token_ids, state, context)` computes one step. This module
owns time: `decode` runs the step function inside one `tf.while_loop`, so the same code
runs eagerly, inside `tf.function`, inside a SavedModel served by stock TensorFlow Serving
(core ops only, beam back-tracking with plain gathers) and, when `max_length` is a Python
int, under XLA (`jit_compile=True`).

Two independent axes, as in OpenNMT-tf: a *strategy* says how hypotheses are organised
(`Greedy`, `BeamSearch`, `Sampling`), and the shared loop handles the rest (end ids,
minimum length, per-row length caps, scores, attention). This module holds the public API
and the helpers both loops share; the loops live in `textrnn.sampling` (greedy and
sampling, with `filter_logits`) and `textrnn.beam_search`.

Example:
    >>> result = decode(model.step, state, start_ids, BeamSearch(width=4, n_best=2), 50)
    >>> result.ids.shape  # [batch, n_best, max_length]
    TensorShape([8, 2, 50])
"""

import dataclasses
import math
import numbers
from typing import NamedTuple

import tensorflow as tf

from textrnn.special_tokens import EOS_ID

LENGTH_PENALTIES = ("gnmt", "average", "none")

# Temperatures below this are treated as 0, i.e. greedy: dividing logits by a smaller
# number overflows float32 for ordinary logit magnitudes.
GREEDY_TEMPERATURE = 1e-6

_NEG_INF = float("-inf")


# --------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_scalar_tensor(value):
    return tf.is_tensor(value) and value.shape.rank in (None, 0)


def _check_int(name, value, minimum, allow_tensor=False):
    if allow_tensor and _is_scalar_tensor(value):
        return
    if not _is_int(value) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        if allow_tensor:
            kind += " (or a scalar integer tensor)"
        raise ValueError(f"Expected {kind} for `{name}`. Received: {name}={value!r}")


@dataclasses.dataclass(frozen=True)
class Greedy:
    """Greedy search: the most probable next token at every step.

    Returns one hypothesis per row. Equal, token for token and score for score, to
    `BeamSearch(width=1, length_penalty="none")` and to `Sampling(top_k=1)`.

    Example:
        >>> decode(step_fn, state, start_ids, Greedy(), max_length=20).ids.shape
        TensorShape([4, 1, 20])
    """


@dataclasses.dataclass(frozen=True)
class BeamSearch:
    """Beam search with frozen finished hypotheses, length and coverage penalties.

    At every step the `width` best expansions of the live hypotheses are kept; those that
    end (an end id, or the row's length cap) move to a finished set, where their score
    never changes again. The search stops for a row as soon as no live hypothesis can
    beat the worst of the kept `n_best` finished ones (a bound that holds for every
    length penalty below, see `decode`).

    `width`, `n_best` and `alpha` may be scalar tensors (an export then takes them as
    inputs; tensors are checked in the graph, and a tensor `width` cannot be XLA-compiled).

    Args:
        width: number of live hypotheses kept per row.
        n_best: number of hypotheses returned per row, best first; `1 <= n_best <= width`.
        length_penalty: how a hypothesis' log-probability `s` of length `L` (end token
            included) is normalised for ranking: `"gnmt"` divides by
            `((5 + L) / 6) ** alpha` (Wu et al., 2016), `"average"` divides by `L`,
            `"none"` keeps `s`.
        alpha: the GNMT length-penalty exponent (any real; 0 disables it).
        coverage_penalty: the GNMT coverage penalty weight `beta >= 0`: the normalised
            score gains `beta * sum_i log(min(coverage_i, 1))` where `coverage_i` is the
            attention mass that source position `i` received so far. Needs `step_fn` to
            return attention.
        no_repeat_ngram_size: if `n > 0`, a hypothesis may not generate an n-gram that
            already occurs in its own generated tokens (the start id is not part of them).

    Raises:
        ValueError: if a parameter is out of range, naming the received value.

    Example:
        >>> strategy = BeamSearch(width=4, n_best=2, length_penalty="average")
        >>> decode(step_fn, state, start_ids, strategy, max_length=20).ids.shape
        TensorShape([4, 2, 20])
    """

    width: int = 5
    n_best: int = 1
    length_penalty: str = "gnmt"
    alpha: float = 0.6
    coverage_penalty: float = 0.0
    no_repeat_ngram_size: int = 0

    def __post_init__(self):
        _check_int("width", self.width, 1, allow_tensor=True)
        if not _is_scalar_tensor(self.n_best) and (
            not _is_int(self.n_best)
            or self.n_best < 1
            or (_is_int(self.width) and self.n_best > self.width)
        ):
            raise ValueError(
                "Expected `n_best` to be an integer with 1 <= n_best <= width. "
                f"Received: n_best={self.n_best!r}, width={self.width!r}"
            )
        if self.length_penalty not in LENGTH_PENALTIES:
            raise ValueError(
                f"Expected `length_penalty` in {LENGTH_PENALTIES}. "
                f"Received: length_penalty={self.length_penalty!r}"
            )
        if not _is_scalar_tensor(self.alpha) and (
            not _is_real(self.alpha) or not math.isfinite(self.alpha)
        ):
            raise ValueError(
                f"Expected a finite number for `alpha`. Received: alpha={self.alpha!r}"
            )
        if (
            not _is_real(self.coverage_penalty)
            or not math.isfinite(self.coverage_penalty)
            or self.coverage_penalty < 0
        ):
            raise ValueError(
                "Expected a finite number >= 0 for `coverage_penalty`. "
                f"Received: coverage_penalty={self.coverage_penalty!r}"
            )
        _check_int("no_repeat_ngram_size", self.no_repeat_ngram_size, 0)


@dataclasses.dataclass(frozen=True)
class Sampling:
    """Ancestral sampling with temperature, top-k, top-p and a repetition penalty.

    Every parameter may be a Python number (validated here) or a scalar tensor, so an
    export can take them as inputs. The logits are processed in this order: minimum-length
    masking, repetition penalty, temperature, top-k, top-p (over the distribution
    renormalised after top-k), then one stateless draw per row. Returned scores are the
    model's own log-probabilities, not those of this modified distribution.

    Args:
        temperature: logits are divided by it. `temperature < GREEDY_TEMPERATURE`
            (including 0) means greedy: the argmax of the (penalised) logits.
        top_k: keep only the `top_k` most probable tokens; 0 keeps all. `top_k=1` is
            greedy.
        top_p: nucleus sampling: keep the smallest set of most probable tokens whose mass
            reaches `top_p` (at least one token); 1.0 keeps all.
        seed: the step-`t` draw uses `tf.random.stateless_categorical` with seed
            `(seed, t)`, so a seed gives the same ids eagerly, in `tf.function` and in a
            SavedModel. XLA (`jit_compile=True`) implements the stateless generator
            differently, so it gives other (equally distributed, still reproducible) ids.
            Draws depend on a row's position in the batch.
        repetition_penalty: CTRL-style penalty `> 0` on tokens already generated in the
            row (the start id excluded): positive logits are divided by it, negative ones
            multiplied. 1.0 is off.

    Raises:
        ValueError: if a Python parameter is out of range, naming the received value.

    Example:
        >>> strategy = Sampling(temperature=0.8, top_p=0.9, seed=7)
        >>> decode(step_fn, state, start_ids, strategy, max_length=20).ids.shape
        TensorShape([4, 1, 20])
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0
    repetition_penalty: float = 1.0

    def __post_init__(self):
        if not _is_scalar_tensor(self.temperature) and (
            not _is_real(self.temperature)
            or not math.isfinite(self.temperature)
            or self.temperature < 0
        ):
            raise ValueError(
                "Expected a finite number >= 0 (or a scalar tensor) for `temperature`. "
                f"Received: temperature={self.temperature!r}"
            )
        _check_int("top_k", self.top_k, 0, allow_tensor=True)
        if not _is_scalar_tensor(self.top_p) and (
            not _is_real(self.top_p) or not 0.0 < self.top_p <= 1.0
        ):
            raise ValueError(
                "Expected a number in (0, 1] (or a scalar tensor) for `top_p`. "
                f"Received: top_p={self.top_p!r}"
            )
        if not _is_scalar_tensor(self.seed) and (
            not _is_int(self.seed) or not -(2**31) <= self.seed < 2**31
        ):
            raise ValueError(
                "Expected a 32-bit integer (or a scalar integer tensor) for `seed`. "
                f"Received: seed={self.seed!r}"
            )
        if not _is_scalar_tensor(self.repetition_penalty) and (
            not _is_real(self.repetition_penalty)
            or not math.isfinite(self.repetition_penalty)
            or self.repetition_penalty <= 0
        ):
            raise ValueError(
                "Expected a finite number > 0 (or a scalar tensor) for `repetition_penalty`. "
                f"Received: repetition_penalty={self.repetition_penalty!r}"
            )


_STRATEGIES = {"greedy": Greedy, "beam": BeamSearch, "sample": Sampling}


def make_strategy(name, **params):
    """Builds a strategy from its command-line / recipe name and parameters.

    Args:
        name: `"greedy"`, `"beam"` or `"sample"`.
        **params: fields of the matching dataclass (`Greedy` takes none).

    Returns:
        A `Greedy`, `BeamSearch` or `Sampling` instance.

    Raises:
        ValueError: for an unknown name or parameter (listing the valid ones) or a value
            out of range.

    Example:
        >>> make_strategy("beam", width=3, length_penalty="none")
        BeamSearch(width=3, n_best=1, length_penalty='none', alpha=0.6, coverage_penalty=0.0, no_repeat_ngram_size=0)
    """
    if name not in _STRATEGIES:
        raise ValueError(
            f"Unknown decoding strategy. Expected one of {tuple(_STRATEGIES)}. "
            f"Received: name={name!r}"
        )
    cls = _STRATEGIES[name]
    valid = tuple(field.name for field in dataclasses.fields(cls))
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(
            f"Unknown parameter(s) {unknown} for decoding strategy {name!r}. "
            f"Valid parameters: {valid if valid else '(none)'}"
        )
    return cls(**params)


# --------------------------------------------------------------------------------------
# Result and shared helpers
# --------------------------------------------------------------------------------------


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


def _call_step(step_fn, token_ids, state, context):
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


def _vocab_size(logits):
    return logits.shape[-1] if logits.shape[-1] is not None else tf.shape(logits)[-1]


def _end_mask(vocab, end_ids):
    """Boolean `[vocab]`, True at the end ids."""
    return tf.reduce_any(tf.equal(tf.range(vocab)[:, None], tf.constant(end_ids)[None, :]), 1)


def _forbid_end(scores, end_ids, t, min_length):
    """Sets end-id columns to -inf while fewer than `min_length` tokens were generated."""
    if not end_ids or (_is_int(min_length) and min_length == 0):
        return scores
    blocked = _end_mask(_vocab_size(scores), end_ids) & (t < min_length)
    return tf.where(blocked, _NEG_INF, scores)


def _is_end(tokens, end_ids):
    if not end_ids:
        return tf.zeros_like(tokens, tf.bool)
    return tf.reduce_any(tf.equal(tokens[..., None], tf.constant(end_ids)), -1)


def _row_caps(batch, max_length, source_lengths, ratio, offset):
    """Per-row cap `min(max_length, ceil(ratio * source_length) + offset)`, at least 1."""
    caps = tf.fill([batch], max_length)
    if ratio is not None:
        lengths = tf.cast(source_lengths, tf.float64)
        # The epsilon keeps ratio * length = 12.000000000000002 from rounding up to 13.
        scaled = tf.math.ceil(float(ratio) * lengths - 1e-9) + float(offset)
        caps = tf.minimum(caps, tf.cast(scaled, tf.int32))
    return tf.maximum(caps, 1)


class _Options(NamedTuple):
    max_length: object  # Python int or int32 scalar tensor
    min_length: object
    end_ids: tuple
    caps: tf.Tensor  # [batch] int32
    source_lengths: tf.Tensor | None


def _check_end_ids(end_ids, vocab):
    if end_ids and _is_int(vocab) and max(end_ids) >= vocab:
        raise ValueError(
            f"Expected `end_ids` below the vocabulary size {vocab}. Received: end_ids={end_ids!r}"
        )


# --------------------------------------------------------------------------------------
# decode
# --------------------------------------------------------------------------------------


def decode(
    step_fn,
    initial_state,
    start_ids,
    strategy,
    max_length,
    *,
    min_length=0,
    end_ids=(EOS_ID,),
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
    _check_int("max_length", max_length, 1, allow_tensor=True)
    _check_int("min_length", min_length, 0, allow_tensor=True)
    _check_int("max_length_offset", max_length_offset, 0)
    if capacity is not None:
        _check_int("capacity", capacity, 1)
    if _is_int(end_ids):
        end_ids = (end_ids,)
    if not isinstance(end_ids, (tuple, list)) or not all(_is_int(i) and i >= 0 for i in end_ids):
        raise ValueError(
            f"Expected a tuple of non-negative ints for `end_ids`. Received: end_ids={end_ids!r}"
        )
    end_ids = tuple(int(i) for i in end_ids)
    if max_length_ratio is not None:
        if not _is_real(max_length_ratio) or not max_length_ratio > 0:
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
    if not _is_int(max_length):
        max_length = tf.maximum(tf.cast(max_length, tf.int32), 1)
    if capacity is not None:
        max_length = (
            min(max_length, capacity) if _is_int(max_length) else tf.minimum(max_length, capacity)
        )
    if not _is_int(min_length):
        min_length = tf.cast(min_length, tf.int32)

    batch = tf.shape(start_ids)[0]
    caps = _row_caps(batch, max_length, source_lengths, max_length_ratio, max_length_offset)
    # The loops size their buffers by `options.max_length` and stop rows at `caps`.
    buffer_length = max_length if capacity is None else capacity
    options = _Options(buffer_length, min_length, end_ids, caps, source_lengths)
    # Imported here: the loop modules import this one for the strategies and helpers.
    if isinstance(strategy, BeamSearch):
        from textrnn.beam_search import beam_search

        return beam_search(step_fn, initial_state, start_ids, strategy, context, options)
    from textrnn.sampling import greedy_or_sample

    return greedy_or_sample(step_fn, initial_state, start_ids, strategy, context, options)
