"""Tests for textrnn.data.pipelines: LM windows, stream continuity, bucketing, padding."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from textrnn.data.pipelines import (
    batch_by_length,
    bucket_by_length,
    count_bucketed_batches,
    encode_in_chunks,
    length_boundaries,
    lm_random_windows,
    lm_stream_windows,
    num_stream_batches,
    pad_rows,
    padding_fraction,
)


def _batches(ds, n=None):
    out = []
    for x, y in ds:
        out.append((x.numpy(), y.numpy()))
        if n is not None and len(out) == n:
            break
    return out


# -- random windows -----------------------------------------------------------


def test_random_windows_shapes_and_shifted_targets():
    ids = np.random.default_rng(0).integers(4, 50, size=500).astype(np.int32)
    ds = lm_random_windows(ids, seq_len=16, batch_size=8, seed=1)
    assert ds.element_spec[0].shape == (8, 16) and ds.element_spec[0].dtype == tf.int32
    for x, y in _batches(ds, 5):
        assert x.shape == y.shape == (8, 16)
        np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
        for row_x, row_y in zip(x, y):
            # each row is a real window of the text: find its offset and compare
            starts = [s for s in range(500 - 16) if np.array_equal(ids[s : s + 16], row_x)]
            assert any(np.array_equal(ids[s + 1 : s + 17], row_y) for s in starts)


def test_random_windows_deterministic_with_seed():
    ids = np.arange(1000)
    first = _batches(lm_random_windows(ids, 10, 4, seed=7), 3)
    again = _batches(lm_random_windows(ids, 10, 4, seed=7), 3)
    other = _batches(lm_random_windows(ids, 10, 4, seed=8), 3)
    ds = lm_random_windows(ids, 10, 4, seed=7)
    for (a, _), (b, _), (c, _) in zip(first, again, _batches(ds, 3)):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    assert not all(np.array_equal(a, c) for (a, _), (c, _) in zip(first, other))


def test_random_windows_cover_every_offset():
    ids = np.arange(20)  # 20 - 4 = 16 possible window starts: 0 .. 15
    starts = set()
    for x, y in _batches(lm_random_windows(ids, 4, 8, seed=0), 60):
        np.testing.assert_array_equal(y, x + 1)
        starts.update(x[:, 0].tolist())
    assert starts == set(range(16))


def test_random_windows_one_pass_without_repeat():
    ids = np.arange(1001)
    ds = lm_random_windows(ids, seq_len=10, batch_size=8, seed=0, repeat=False)
    assert len(_batches(ds)) == (1000 // 10) // 8


@pytest.mark.parametrize(
    "ids, seq_len, batch_size, match",
    [
        (np.arange(10), 0, 2, "positive integer for `seq_len`"),
        (np.arange(10), 4, -1, "positive integer for `batch_size`"),
        (np.zeros((4, 4), np.int32), 2, 2, "1-D"),
        (np.linspace(0, 1, 20), 4, 2, "integer token ids"),
        (np.arange(5), 5, 2, "at least seq_len \\+ 1 = 6"),
    ],
)
def test_random_windows_validation(ids, seq_len, batch_size, match):
    with pytest.raises(ValueError, match=match):
        lm_random_windows(ids, seq_len, batch_size)


# -- stream windows ------------------------------------------------------------


def test_stream_windows_rows_continue_across_batches():
    n, seq_len, batch_size = 1003, 7, 4
    ids = np.random.default_rng(1).integers(0, 60, size=n).astype(np.int32)
    ds = lm_stream_windows(ids, seq_len, batch_size)
    assert ds.element_spec[0].shape == (batch_size, seq_len)
    batches = _batches(ds)
    assert len(batches) == num_stream_batches(n, seq_len, batch_size) == (250 - 1) // 7
    track_len = n // batch_size
    for r in range(batch_size):
        track = ids[r * track_len : (r + 1) * track_len]
        row_inputs = np.concatenate([x[r] for x, _ in batches])
        row_targets = np.concatenate([y[r] for _, y in batches])
        np.testing.assert_array_equal(row_inputs, track[: len(row_inputs)])
        np.testing.assert_array_equal(row_targets, track[1 : len(row_inputs) + 1])
    for (_, y0), (x1, _) in itertools.pairwise(batches):
        # the next window starts with the id the last position had to predict
        np.testing.assert_array_equal(x1[:, 0], y0[:, -1])


def test_stream_windows_drop_remainder_and_tensor_input():
    ids = tf.range(100, dtype=tf.int64)
    batches = _batches(lm_stream_windows(ids, seq_len=4, batch_size=3))
    # 3 tracks of 33 ids (the last id is dropped), 8 windows of 4 (+1 target) each
    assert len(batches) == 8
    assert all(x.shape == (3, 4) and x.dtype == np.int32 for x, _ in batches)
    np.testing.assert_array_equal(batches[0][0][:, 0], [0, 33, 66])
    np.testing.assert_array_equal(batches[-1][1][:, -1], [32, 65, 98])


def test_num_stream_batches_edges():
    assert num_stream_batches(0, 4, 2) == 0
    assert num_stream_batches(9, 4, 2) == 0  # tracks of 4 ids cannot give 4 + 1
    assert num_stream_batches(10, 4, 2) == 1
    with pytest.raises(ValueError, match="too few"):
        lm_stream_windows(np.arange(9), 4, 2)
    with pytest.raises(ValueError, match="`seq_len`"):
        num_stream_batches(10, 0, 2)


# -- bucketing and padding -----------------------------------------------------


def _variable_length_dataset(n=400, seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 80, size=n)
    seqs = [rng.integers(4, 100, size=int(k)).astype(np.int32) for k in lengths]
    labels = rng.integers(0, 2, size=n).astype(np.int32)
    ds = tf.data.Dataset.from_generator(
        lambda: zip(seqs, labels),
        output_signature=(tf.TensorSpec([None], tf.int32), tf.TensorSpec([], tf.int32)),
    )
    return ds, int(lengths.sum())


def test_bucketing_reduces_padding_and_keeps_every_token():
    ds, total_tokens = _variable_length_dataset()
    plain = ds.padded_batch(16)
    bucketed = bucket_by_length(ds, None, [10, 20, 40, 60], [16] * 5)
    plain_pad = padding_fraction(plain)
    bucket_pad = padding_fraction(bucketed)
    assert bucket_pad < plain_pad / 2
    tokens = sum(int(tf.math.count_nonzero(x)) for x, _ in bucketed)
    assert tokens == total_tokens
    labels = sum(int(tf.size(y)) for _, y in bucketed)
    assert labels == 400
    assert bucketed.element_spec[1].dtype == tf.int32


def test_bucketing_with_dict_key_custom_pad_and_length_fn():
    seqs = [[5] * k for k in (3, 9, 4, 10, 2)]
    ds = tf.data.Dataset.from_generator(
        lambda: ({"tokens": s, "weight": 1.0} for s in seqs),
        output_signature={
            "tokens": tf.TensorSpec([None], tf.int32),
            "weight": tf.TensorSpec([], tf.float32),
        },
    )
    batches = list(bucket_by_length(ds, "tokens", [6], [2, 2], pad_value=-1))
    assert [b["tokens"].shape[1] for b in batches] == [4, 10, 2]
    assert batches[0]["tokens"].numpy().tolist() == [[5, 5, 5, -1], [5, 5, 5, 5]]
    assert padding_fraction(tf.data.Dataset.from_tensors(batches[0]), "tokens", -1) == 0.125
    by_fn = bucket_by_length(ds, lambda e: tf.size(e["tokens"]), [6], [2, 2])
    assert [b["tokens"].shape[1] for b in by_fn] == [4, 10, 2]


@pytest.mark.parametrize(
    "boundaries, batch_sizes, match",
    [
        ([10, 5], [2, 2, 2], "strictly increasing"),
        ([0, 5], [2, 2, 2], "positive"),
        ([5, 10], [2, 2], "len\\(boundaries\\) \\+ 1 = 3"),
    ],
)
def test_bucketing_validation(boundaries, batch_sizes, match):
    ds, _ = _variable_length_dataset(4)
    with pytest.raises(ValueError, match=match):
        bucket_by_length(ds, None, boundaries, batch_sizes)


def test_padding_fraction_exact_and_infinite():
    ds = tf.data.Dataset.from_tensor_slices(
        (tf.constant([[[1, 2, 0, 0], [3, 0, 0, 0]]]), tf.constant([[1, 0]]))
    )
    assert padding_fraction(ds) == 0.625
    assert padding_fraction(ds, key=1) == 0.5
    assert padding_fraction(ds.take(0)) == 0.0
    with pytest.raises(ValueError, match="finite"):
        padding_fraction(ds.repeat())


def test_length_boundaries_and_exact_batch_counts():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 60, size=500)
    boundaries = length_boundaries(lengths, 6)
    assert boundaries == sorted(set(boundaries)) and 1 <= len(boundaries) <= 5
    assert length_boundaries(lengths, 1) == []
    rows = [np.full(n, 7, np.int32) for n in lengths]
    for bounds in (boundaries, []):
        ds = tf.data.Dataset.from_generator(
            lambda: iter(rows), output_signature=tf.TensorSpec([None], tf.int32)
        )
        batches = list(batch_by_length(ds, None, bounds, 16))
        assert len(batches) == count_bucketed_batches(lengths, bounds, 16)
        assert sum(int(tf.math.count_nonzero(b)) for b in batches) == lengths.sum()


def test_pad_rows_and_encode_in_chunks():
    padded, lengths = pad_rows([np.array([5, 6]), np.array([], np.int32), np.array([7])])
    assert padded.tolist() == [[5, 6], [0, 0], [7, 0]] and lengths.tolist() == [2, 0, 1]
    assert pad_rows([np.array([], np.int32)])[0].shape == (1, 1)
    texts = ["héllo", "", "ab"] * 5
    rows = encode_in_chunks(lambda t: tf.strings.unicode_decode(t, "UTF-8"), texts, 4)
    assert [r.tolist() for r in rows] == [[ord(c) for c in t] for t in texts]
    assert all(r.dtype == np.int32 for r in rows)
