"""The synthetic long-range tasks have the statistics their docstrings state."""

import math

import numpy as np
import pytest

from textrnn.data.synthetic import (
    ADDING_BASELINE_MSE,
    adding_problem,
    copy_baseline_cross_entropy,
    copy_task,
)


def test_adding_problem_shapes_markers_and_targets():
    inputs, targets = adding_problem(500, length=37, seed=3)
    assert inputs.shape == (500, 37, 2) and inputs.dtype == np.float32
    assert targets.shape == (500,) and targets.dtype == np.float32
    values, markers = inputs[..., 0], inputs[..., 1]
    assert set(np.unique(markers)) == {0.0, 1.0}
    np.testing.assert_array_equal(markers.sum(axis=1), 2.0)
    assert values.min() >= 0.0 and values.max() < 1.0
    # One marker in each half: [0, 18) and [18, 37).
    np.testing.assert_array_equal(markers[:, :18].sum(axis=1), 1.0)
    np.testing.assert_array_equal(markers[:, 18:].sum(axis=1), 1.0)
    # The target is the sum of the two marked values (brute force, row by row).
    for row in range(500):
        marked = np.flatnonzero(markers[row])
        assert targets[row] == pytest.approx(values[row, marked].sum(), abs=1e-6)


def test_adding_problem_statistics_and_trivial_baseline():
    _, targets = adding_problem(100_000, length=10, seed=0)
    # U1 + U2: mean 1, variance 1/6. Standard errors at n = 1e5: about 0.0013 for the
    # mean, 0.0007 for the variance; the tolerances are about 4 of them.
    assert targets.mean() == pytest.approx(1.0, abs=0.005)
    assert targets.var() == pytest.approx(1.0 / 6.0, abs=0.003)
    baseline = np.mean((targets - 1.0) ** 2)
    assert ADDING_BASELINE_MSE == pytest.approx(0.1667, abs=1e-4)
    assert baseline == pytest.approx(ADDING_BASELINE_MSE, abs=0.003)


def test_marker_positions_cover_each_half_uniformly():
    inputs, _ = adding_problem(20_000, length=8, seed=5)
    first = inputs[:, :4, 1].argmax(axis=1)
    second = 4 + inputs[:, 4:, 1].argmax(axis=1)
    np.testing.assert_allclose(np.bincount(first, minlength=4) / 20_000, 0.25, atol=0.015)
    np.testing.assert_allclose(np.bincount(second)[4:] / 20_000, 0.25, atol=0.015)


def test_copy_task_layout():
    inputs, targets = copy_task(200, lag=7, seed=1, num_symbols=5, num_recalled=3)
    assert inputs.shape == (200, 7 + 2 * 3) and inputs.dtype == np.int32
    assert targets.shape == (200, 3) and targets.dtype == np.int32
    blank, marker = 5, 6
    np.testing.assert_array_equal(inputs[:, :3], targets)
    assert targets.min() >= 0 and targets.max() < 5
    # Blanks for lag - 1 steps, the marker at step k + lag - 1, blanks to the end.
    np.testing.assert_array_equal(inputs[:, 3:9], blank)
    np.testing.assert_array_equal(inputs[:, 9], marker)
    np.testing.assert_array_equal(inputs[:, 10:], blank)
    assert (inputs == marker).sum(axis=1).tolist() == [1] * 200


def test_copy_task_symbols_are_uniform_and_the_baseline_is_log_alphabet():
    _, targets = copy_task(20_000, lag=1, seed=2)  # 8 symbols, 10 recalled
    frequencies = np.bincount(targets.ravel(), minlength=8) / targets.size
    np.testing.assert_allclose(frequencies, 1 / 8, atol=0.005)
    assert copy_baseline_cross_entropy(8) == pytest.approx(math.log(8))
    # The cross-entropy of the uniform prediction, computed from the data.
    uniform = np.full(8, 1 / 8)
    assert -np.log(uniform[targets]).mean() == pytest.approx(copy_baseline_cross_entropy(8))


@pytest.mark.parametrize(
    "make",
    [
        lambda seed: adding_problem(50, length=20, seed=seed),
        lambda seed: copy_task(50, lag=20, seed=seed),
    ],
    ids=["adding", "copy"],
)
def test_reproducible_by_seed_and_different_across_seeds(make):
    a, b, c = make(4), make(4), make(5)
    np.testing.assert_array_equal(a.inputs, b.inputs)
    np.testing.assert_array_equal(a.targets, b.targets)
    assert not np.array_equal(a.inputs, c.inputs)
    assert not np.array_equal(a.targets, c.targets)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: adding_problem(0, 10, 0), "n=0"),
        (lambda: adding_problem(10, 1, 0), "length=1"),
        (lambda: adding_problem(10, 10, -1), "seed=-1"),
        (lambda: adding_problem(10, 10.0, 0), "length=10.0"),
        (lambda: adding_problem(True, 10, 0), "n=True"),
        (lambda: adding_problem(10, 10, None), "seed=None"),
        (lambda: copy_task(10, 0, 0), "lag=0"),
        (lambda: copy_task(10, 5, 0, num_symbols=1), "num_symbols=1"),
        (lambda: copy_task(10, 5, 0, num_recalled=0), "num_recalled=0"),
        (lambda: copy_task(10, 5, "7"), "seed='7'"),
        (lambda: copy_baseline_cross_entropy(1), "num_symbols=1"),
    ],
)
def test_bad_arguments_are_clear_value_errors(call, message):
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        call()
