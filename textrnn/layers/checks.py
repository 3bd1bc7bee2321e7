"""Argument checks shared by the models: early errors that name the received value."""

from __future__ import annotations


def positive_int(name, value):
    """Raises ValueError unless `value` is an int > 0 (bools are not ints here)."""
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"Expected a positive integer for `{name}`. Received: {name}={value!r}")


def unit_fraction(name, value):
    """Raises ValueError unless `value` is a number in [0, 1) (a dropout rate)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value < 1.0:
        raise ValueError(f"Expected a float in [0, 1) for `{name}`. Received: {name}={value!r}")


def one_of(name, value, choices):
    """Raises ValueError unless `value` is one of `choices`."""
    if value not in choices:
        raise ValueError(f"Expected `{name}` in {tuple(choices)}. Received: {name}={value!r}")
