"""Decoding strategies: how hypotheses are organised (`Greedy`, `BeamSearch`, `Sampling`).

Each strategy is a frozen dataclass whose fields are validated when it is made, with
errors that name the received value; `make_strategy` builds one from its command-line /
recipe name. The loops that run them are in `textrnn.decoding.sampling` (greedy and
sampling) and `textrnn.decoding.beam_search`; `textrnn.decoding.search.decode` picks the loop.

Example:
    >>> make_strategy("sample", temperature=0.8, top_p=0.95)
    Sampling(temperature=0.8, top_k=0, top_p=0.95, seed=None, repetition_penalty=1.0)
"""

import dataclasses
import math
import numbers

import tensorflow as tf

LENGTH_PENALTIES = ("gnmt", "average", "none")
# What beam search does with a hypothesis that reaches its row's length cap without an
# end id (see `BeamSearch`).
CAPPED_RULES = ("force_end", "rank_last", "prefix")

# Temperatures below this are treated as 0, i.e. greedy: dividing logits by a smaller
# number overflows float32 for ordinary logit magnitudes.
GREEDY_TEMPERATURE = 1e-6


# --------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------


def is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_scalar_tensor(value):
    return tf.is_tensor(value) and value.shape.rank in (None, 0)


def check_int(name, value, minimum, allow_tensor=False):
    if allow_tensor and is_scalar_tensor(value):
        return
    if not is_int(value) or value < minimum:
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
        capped: what happens to a hypothesis that reaches its row's length cap without
            ending: `"force_end"` (fairseq's rule) allows only end ids at the cap's last
            step, so every returned hypothesis ends with one and pays for it;
            `"rank_last"` keeps hypotheses cut at the cap, scored by their prefix, but
            ranks them after every hypothesis that ended; `"prefix"` ranks them by their
            prefix among the others (a cut hypothesis never pays for an end token, so it
            can beat complete ones). Without end ids every hypothesis is cut at the cap
            and all three rules are the same. `"prefix"` is the default because it
            translated best where the rules differ (`benchmarks/capped_hypotheses.py`:
            Multi30k and spa-eng validation; with the recipes' caps no hypothesis
            reached its cap, with tight caps `"prefix"` scored 36.01 sacreBLEU on
            Multi30k against 35.54 for `"rank_last"` and 33.70 for `"force_end"`).

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
    capped: str = "prefix"

    def __post_init__(self):
        check_int("width", self.width, 1, allow_tensor=True)
        if not is_scalar_tensor(self.n_best) and (
            not is_int(self.n_best)
            or self.n_best < 1
            or (is_int(self.width) and self.n_best > self.width)
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
        if not is_scalar_tensor(self.alpha) and (
            not is_real(self.alpha) or not math.isfinite(self.alpha)
        ):
            raise ValueError(
                f"Expected a finite number for `alpha`. Received: alpha={self.alpha!r}"
            )
        if (
            not is_real(self.coverage_penalty)
            or not math.isfinite(self.coverage_penalty)
            or self.coverage_penalty < 0
        ):
            raise ValueError(
                "Expected a finite number >= 0 for `coverage_penalty`. "
                f"Received: coverage_penalty={self.coverage_penalty!r}"
            )
        check_int("no_repeat_ngram_size", self.no_repeat_ngram_size, 0)
        if self.capped not in CAPPED_RULES:
            raise ValueError(
                f"Expected `capped` in {CAPPED_RULES}. Received: capped={self.capped!r}"
            )


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
        if not is_scalar_tensor(self.temperature) and (
            not is_real(self.temperature)
            or not math.isfinite(self.temperature)
            or self.temperature < 0
        ):
            raise ValueError(
                "Expected a finite number >= 0 (or a scalar tensor) for `temperature`. "
                f"Received: temperature={self.temperature!r}"
            )
        check_int("top_k", self.top_k, 0, allow_tensor=True)
        if not is_scalar_tensor(self.top_p) and (
            not is_real(self.top_p) or not 0.0 < self.top_p <= 1.0
        ):
            raise ValueError(
                "Expected a number in (0, 1] (or a scalar tensor) for `top_p`. "
                f"Received: top_p={self.top_p!r}"
            )
        if not is_scalar_tensor(self.seed) and (
            not is_int(self.seed) or not -(2**31) <= self.seed < 2**31
        ):
            raise ValueError(
                "Expected a 32-bit integer (or a scalar integer tensor) for `seed`. "
                f"Received: seed={self.seed!r}"
            )
        if not is_scalar_tensor(self.repetition_penalty) and (
            not is_real(self.repetition_penalty)
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
        BeamSearch(width=3, n_best=1, length_penalty='none', alpha=0.6, coverage_penalty=0.0, no_repeat_ngram_size=0, capped='prefix')
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
