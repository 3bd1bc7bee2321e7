"""Synthetic long-range memory tasks, generated from a seed (nothing is downloaded).

- `adding_problem`: the adding problem in the variant of Le, Jaitly & Hinton (2015):
  values uniform in [0, 1] (Hochreiter & Schmidhuber's 1997 original uses [-1, 1]; this
  module does not), two marked positions, the target the sum of the two marked values.
- `copy_task`: copy / delayed recall: `k` symbols, a gap of blanks, a recall marker, and
  the `k` symbols to be reproduced at the last `k` steps.

Each generator returns numpy arrays and is reproducible: the same arguments and seed
give the same arrays (`numpy.random.default_rng(seed)`), different seeds give different
ones. The trivial baselines (`ADDING_BASELINE_MSE`, `copy_baseline_cross_entropy`) are
what a model that remembers nothing scores.

Example:
    >>> inputs, targets = adding_problem(4, length=50, seed=0)
    >>> inputs.shape, targets.shape
    ((4, 50, 2), (4,))
    >>> inputs, targets = copy_task(4, lag=20, seed=0)
    >>> inputs.shape, targets.shape   # lag + 2 * num_recalled = 20 + 2 * 10
    ((4, 40), (4, 10))
"""

from __future__ import annotations

import math
import typing

import numpy as np

# The target is U1 + U2 with U1, U2 ~ U[0, 1] independent: mean 1, variance 2 / 12 = 1/6.
# Always predicting the mean, 1.0, therefore has a mean-squared error of 1/6 ≈ 0.167.
ADDING_BASELINE_MSE = 1.0 / 6.0


class SyntheticTask(typing.NamedTuple):
    """A batch of examples: `inputs` and `targets` (see each generator for shapes)."""

    inputs: np.ndarray
    targets: np.ndarray


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(
            f"Expected an integer >= {minimum} for `{name}`. Received: {name}={value!r}"
        )
    return int(value)


def adding_problem(n, length, seed) -> SyntheticTask:
    """The adding problem (Le, Jaitly & Hinton 2015 variant: values in [0, 1]).

    Each example is a sequence of `length` steps with two input channels: channel 0 holds
    values drawn uniformly from [0, 1); channel 1 is a marker, 1.0 at exactly two steps
    and 0.0 elsewhere. The first marked step is drawn uniformly from the first half,
    steps `[0, length // 2)`, the second uniformly from the second half,
    `[length // 2, length)`, so the first marked value lies between `length - length // 2`
    and `length` steps before the end, where the answer is read. The target is the sum of
    the two marked values: mean 1, variance 1/6, so always predicting 1.0 gives a
    mean-squared error of 1/6 ≈ 0.167 (`ADDING_BASELINE_MSE`).

    Args:
        n: number of examples, >= 1.
        length: steps per sequence (the lag to bridge), >= 2.
        seed: a non-negative integer.

    Returns:
        `SyntheticTask(inputs, targets)`: float32 `[n, length, 2]` and float32 `[n]`.

    Raises:
        ValueError: `n < 1`, `length < 2`, or a negative or non-integer `seed`.

    Example:
        >>> inputs, targets = adding_problem(3, length=10, seed=1)
        >>> inputs[..., 1].sum(axis=1)
        array([2., 2., 2.], dtype=float32)
    """
    n = _check_int("n", n, 1)
    length = _check_int("length", length, 2)
    seed = _check_int("seed", seed, 0)
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.0, 1.0, size=(n, length))
    half = length // 2
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, length, size=n)
    markers = np.zeros((n, length))
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    targets = values[rows, first] + values[rows, second]
    inputs = np.stack([values, markers], axis=-1).astype(np.float32)
    return SyntheticTask(inputs, targets.astype(np.float32))


def copy_task(n, lag, seed, *, num_symbols=8, num_recalled=10) -> SyntheticTask:
    """Copy / delayed recall: remember `num_recalled` symbols over a gap of `lag` steps.

    Ids `0 ... num_symbols - 1` are the symbols, `num_symbols` is the blank and
    `num_symbols + 1` the recall marker (so inputs take `num_symbols + 2` values). With
    `k = num_recalled`, each input sequence has `lag + 2k` steps (the copy task of
    Arjovsky, Shah & Bengio 2016, with `lag` their T):

    - steps `0 ... k - 1`: `k` symbols drawn uniformly and independently;
    - steps `k ... k + lag - 2`: blanks (`lag - 1` of them);
    - step `k + lag - 1`: the recall marker;
    - steps `k + lag ... lag + 2k - 1`: blanks, during which the model must output the
      `k` symbols in order.

    So symbol `i`, shown at step `i`, is due at step `k + lag + i`: `k + lag` steps
    later. A model that remembers nothing can only guess uniformly: its cross-entropy
    per recalled symbol is `log(num_symbols)` (`copy_baseline_cross_entropy`) and its
    accuracy `1 / num_symbols`.

    Args:
        n: number of examples, >= 1.
        lag: `T`, the steps from the end of the symbols to the end of the recall marker,
            >= 1.
        seed: a non-negative integer.
        num_symbols: alphabet size, >= 2.
        num_recalled: `k`, symbols to remember, >= 1.

    Returns:
        `SyntheticTask(inputs, targets)`: int32 `[n, lag + 2k]` and int32 `[n, k]` (the
        outputs expected at the last `k` steps, i.e. `inputs[:, :k]`).

    Raises:
        ValueError: any size below its minimum, or a negative or non-integer `seed`.

    Example:
        >>> inputs, targets = copy_task(1, lag=3, seed=0, num_symbols=4, num_recalled=2)
        >>> inputs[0].tolist(), targets[0].tolist()  # 4 = blank, 5 = recall marker
        ([3, 2, 4, 4, 5, 4, 4], [3, 2])
    """
    n = _check_int("n", n, 1)
    lag = _check_int("lag", lag, 1)
    seed = _check_int("seed", seed, 0)
    num_symbols = _check_int("num_symbols", num_symbols, 2)
    k = _check_int("num_recalled", num_recalled, 1)
    rng = np.random.default_rng(seed)
    symbols = rng.integers(0, num_symbols, size=(n, k))
    inputs = np.full((n, lag + 2 * k), num_symbols, dtype=np.int32)
    inputs[:, :k] = symbols
    inputs[:, k + lag - 1] = num_symbols + 1
    return SyntheticTask(inputs, symbols.astype(np.int32))


def copy_baseline_cross_entropy(num_symbols=8) -> float:
    """`log(num_symbols)`, in nats: the copy task's cross-entropy per recalled symbol
    for a model that predicts every symbol with equal probability.

    Raises:
        ValueError: `num_symbols < 2`.

    Example:
        >>> round(copy_baseline_cross_entropy(8), 4)
        2.0794
    """
    return math.log(_check_int("num_symbols", num_symbols, 2))
