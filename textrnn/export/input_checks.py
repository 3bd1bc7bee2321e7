"""Input checks for serving signatures: in the graph, and the same rules in Python.

A signature's declared shapes are not enforced when a loaded SavedModel is called (nor by
TensorFlow Serving), and its scalar inputs can hold anything. Each signature therefore
starts by checking every input: `string_batch` for its strings, `scalar_in` for each
number, then `after` makes every later op wait for the checks, so a bad request fails
with an `InvalidArgumentError` before anything is allocated. Messages name the input,
the value and the allowed range: "Expected `max_length` in [0, 4096]. Received:
max_length=2147483647". `check_value` applies the same rule to a Python number (a
`ValueError` with the same message), for the Python API and the command line.

Example:
    >>> max_length = scalar_in("max_length", max_length, Interval(0, limits.max_new_tokens))
    >>> check_value("top_p", 0.0, TOP_P)
    Traceback (most recent call last):
    ValueError: Expected `top_p` in (0, 1]. Received: top_p=0.0
"""

from __future__ import annotations

import math
from typing import NamedTuple

import tensorflow as tf

from textrnn.decoding.strategies import is_int, is_real


class Interval(NamedTuple):
    """The allowed values of one input: `low` to `high` (None: unbounded), closed unless
    `low_open` / `high_open`; always finite, so NaN and infinities are outside."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def describe(self) -> str:
        """`"[0, 4096]"`, `"(0, 1]"`, `">= 0"` or `"finite"`."""
        low, high = _number(self.low), _number(self.high)
        if self.low is None and self.high is None:
            return "finite"
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {low}"
        if self.low is None:
            return f"{'<' if self.high_open else '<='} {high}"
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        return f"{left}{low}, {high}{right}"

    def contains(self, value):
        """Whether `value` (a Python number or a tensor) is allowed; works on both."""
        ok = _finite(value)
        if self.low is not None:
            ok = _and(ok, value > self.low if self.low_open else value >= self.low)
        if self.high is not None:
            ok = _and(ok, value < self.high if self.high_open else value <= self.high)
        return ok


def _number(value) -> str:
    return str(value) if is_int(value) else f"{value:g}" if value is not None else ""


def _finite(value):
    if tf.is_tensor(value):
        return tf.math.is_finite(value) if value.dtype.is_floating else tf.constant(True)
    return math.isfinite(value)


def _and(a, b):
    return tf.logical_and(a, b) if tf.is_tensor(a) or tf.is_tensor(b) else a and b


# Domains of the decoding parameters that signatures take as inputs (the resource caps
# are in `ExportLimits`). The bounds on the repetition penalty and the length-penalty
# exponent keep every logit and score finite: beyond them float32 overflows to inf/NaN.
TEMPERATURE = Interval(0.0)
TOP_K = Interval(0)
TOP_P = Interval(0.0, 1.0, low_open=True)
REPETITION_PENALTY = Interval(1e-3, 1e3)
ALPHA = Interval(-10.0, 10.0)


def _message(name, interval: Interval) -> str:
    return f"Expected `{name}` {_phrase(interval)}. Received: {name}="


def _phrase(interval: Interval) -> str:
    text = interval.describe()
    return f"in {text}" if text[0] in "[(" else f"to be {text}"


def check_value(name: str, value, interval: Interval, integer: bool = False):
    """The Python-side check: returns `value` when allowed.

    Raises:
        ValueError: `value` is not a number (an integer with `integer`) or lies outside
            `interval`; the message is the one the graph gives.
    """
    kind_ok = is_int(value) if integer else is_real(value)
    if not kind_ok or not interval.contains(value):
        if not kind_ok:
            what = "an integer" if integer else "a number"
            raise ValueError(
                f"Expected {what} for `{name}` {_phrase(interval)}. Received: {name}={value!r}"
            )
        raise ValueError(f"{_message(name, interval)}{value!r}")
    return value


def scalar_in(name: str, value, interval: Interval):
    """Checks in the graph that `value` is a scalar inside `interval`.

    Returns:
        `(value, check)`: the value (shape-checked) and the assertion op to pass to
        `after`.
    """
    value = tf.ensure_shape(value, [], name=f"check_{name}_is_a_scalar")
    message = tf.strings.format(_message(name, interval) + "{}", [value])
    return value, tf.debugging.Assert(interval.contains(value), [message])


def string_batch(name: str, strings, max_batch_size: int, max_bytes: int):
    """Checks in the graph that `strings` is a vector of at most `max_batch_size` strings
    of at most `max_bytes` bytes each.

    Returns:
        `(strings, checks)`: the strings (shape-checked) and the assertion ops.
    """
    strings = tf.ensure_shape(strings, [None], name=f"check_{name}_is_a_vector")
    rows = tf.shape(strings)[0]
    batch_check = tf.debugging.Assert(
        rows <= max_batch_size,
        [
            tf.strings.format(
                f"Expected at most {max_batch_size} strings in `{name}`. Received: {{}}", [rows]
            )
        ],
    )
    lengths = tf.strings.length(strings)
    longest = tf.reduce_max(tf.concat([lengths, [0]], 0))
    where = tf.argmax(tf.concat([lengths, [0]], 0), output_type=tf.int32)
    bytes_check = tf.debugging.Assert(
        longest <= max_bytes,
        [
            tf.strings.format(
                f"Expected every string in `{name}` to have at most {max_bytes} bytes. "
                f"Received: {{}} bytes in {name}[{{}}]",
                [longest, where],
            )
        ],
    )
    return strings, [batch_check, bytes_check]


def not_above(name: str, value, other_name: str, other):
    """The assertion op that `value <= other` (two scalar tensors), e.g. `n_best` and
    `beam_width`; pass it to `after`."""
    message = tf.strings.format(
        f"Expected `{name}` <= `{other_name}`. Received: {name}={{}}, {other_name}={{}}",
        [value, other],
    )
    return tf.debugging.Assert(value <= other, [message])


def after(checks, *tensors):
    """`tensors`, each made to wait for every op in `checks` (a flat list)."""
    with tf.control_dependencies(checks):
        return tuple(tf.identity(t) for t in tensors)


def checked_scalars(specs: dict):
    """`scalar_in` for several inputs: `{name: (value, interval)}` ->
    `({name: value}, checks)`."""
    values, checks = {}, []
    for name, (value, interval) in specs.items():
        values[name], check = scalar_in(name, value, interval)
        checks.append(check)
    return values, checks


def checked_inputs(name: str, strings, limits, domains: dict, scalars: dict, ordered=()):
    """Every check of one signature call: the string batch against `limits`, each scalar
    against its domain and each `(smaller, larger)` pair of `ordered` scalar names.

    Args:
        name: the string input's name (`"prompts"`, `"sources"`, ...).
        strings: the string tensor.
        limits: an `ExportLimits` (`max_batch_size`, `max_input_bytes`).
        domains: `{scalar name: interval}`.
        scalars: `{scalar name: tensor}`, in the order they are returned.
        ordered: pairs of names that must satisfy `scalars[a] <= scalars[b]`.

    Returns:
        `(strings, *scalars)`, each made to wait for every check.

    Example:
        >>> sources, width, n_best = checked_inputs(
        ...     "sources", sources, limits, domains, {"beam_width": w, "n_best": n},
        ...     ordered=[("n_best", "beam_width")])
    """
    strings, string_checks = string_batch(
        name, strings, limits.max_batch_size, limits.max_input_bytes
    )
    values, scalar_checks = checked_scalars(
        {key: (value, domains[key]) for key, value in scalars.items()}
    )
    for smaller, larger in ordered:
        if smaller in values and larger in values:
            scalar_checks.append(not_above(smaller, values[smaller], larger, values[larger]))
    return after(string_checks + scalar_checks, strings, *values.values())


def check_text_bytes(texts, max_bytes: int, noun: str) -> None:
    """The Python API's side of `string_batch`'s byte cap.

    Args:
        texts: Python strings.
        max_bytes: the most UTF-8 bytes one may have (`ExportLimits.max_input_bytes`).
        noun: what one text is called in the message ("prompt", "text", "source").

    Raises:
        ValueError: naming the first text over the cap, its index and its size.

    Example:
        >>> check_text_bytes(["Ein Hund."], 65536, "source")
    """
    for i, text in enumerate(texts):
        size = len(text.encode("utf-8"))
        if size > max_bytes:
            raise ValueError(
                f"Expected every {noun} to have at most {max_bytes} bytes. "
                f"Received: {size} bytes in {noun} {i}"
            )
