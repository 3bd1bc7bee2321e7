"""tf.data pipelines: language-model windows, bucketing and padding statistics.

Two ways to cut a token stream into language-model examples:

- `lm_random_windows`: windows at uniformly random offsets (nanoGPT's
  `get_batch`), for stateless training; every batch is an independent sample.
- `lm_stream_windows`: `batch_size` contiguous tracks read left to right, so row
  `r` of batch `i + 1` continues row `r` of batch `i`; for truncated
  backpropagation through time with the recurrent state carried across batches.

Both yield `(inputs, targets)` int32 pairs of static shape `[batch_size, seq_len]`
where `targets` is `inputs` shifted one token to the left.

For variable-length token sequences, `bucket_by_length` batches similar lengths
together and `padding_fraction` measures how much of a padded dataset is padding.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from textrnn.text.special_tokens import PAD_ID


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"Expected a positive integer for `{name}`. Received: {name}={value!r}")
    return int(value)


def _as_ids(ids, seq_len: int) -> tf.Tensor:
    ids = tf.convert_to_tensor(ids)
    if ids.shape.rank != 1:
        raise ValueError(f"Expected 1-D token ids. Received shape {ids.shape}.")
    if not ids.dtype.is_integer:
        raise ValueError(f"Expected integer token ids. Received dtype {ids.dtype.name}.")
    if ids.shape[0] < seq_len + 1:
        raise ValueError(
            f"Need at least seq_len + 1 = {seq_len + 1} ids for one window. "
            f"Received {ids.shape[0]} ids."
        )
    return tf.cast(ids, tf.int32)


def lm_random_windows(
    ids,
    seq_len: int,
    batch_size: int,
    *,
    seed: int | None = None,
    repeat: bool = True,
) -> tf.data.Dataset:
    """Batches of language-model windows at uniformly random offsets.

    Each window starts at an offset drawn uniformly from `[0, n - seq_len - 1]`,
    with replacement (as nanoGPT's `get_batch`), so every position can be a window
    start and no epoch boundary exists. With `repeat=False` the dataset is finite:
    it holds `num_windows = (n - 1) // seq_len` windows (about one pass over the
    text) in `num_windows // batch_size` batches.

    Args:
        ids: 1-D integer numpy array or tensor of token ids, length `n`.
        seq_len: window length.
        batch_size: windows per batch; the remainder is dropped, so the batch
            dimension is static.
        seed: seed for the offsets; the same seed gives the same batches on
            every iteration. None draws fresh offsets.
        repeat: True for an endless dataset, False for one pass.

    Returns:
        A `tf.data.Dataset` of `(inputs, targets)`, both int32
        `[batch_size, seq_len]`, with `targets[:, t] == inputs[:, t + 1]` and
        `targets[:, -1]` the id after the window.

    Raises:
        ValueError: for non-positive sizes, ids that are not 1-D integers, or
            fewer than `seq_len + 1` ids.

    Example:

    >>> ds = lm_random_windows(np.arange(100), seq_len=8, batch_size=4, seed=0)
    >>> x, y = next(iter(ds))
    >>> x.shape, y.shape
    (TensorShape([4, 8]), TensorShape([4, 8]))
    """
    seq_len = _check_positive_int(seq_len, "seq_len")
    batch_size = _check_positive_int(batch_size, "batch_size")
    ids = _as_ids(ids, seq_len)
    num_starts = int(ids.shape[0]) - seq_len  # offsets 0 .. n - seq_len - 1
    window = tf.range(seq_len + 1, dtype=tf.int64)

    def to_windows(draws):
        offsets = tf.math.floormod(draws, num_starts)
        chunk = tf.gather(ids, offsets[:, None] + window[None, :])
        return chunk[:, :-1], chunk[:, 1:]

    # Dataset.random with a fixed seed restarts the same sequence on each iteration.
    offsets = tf.data.Dataset.random(seed=seed)
    if not repeat:
        offsets = offsets.take((int(ids.shape[0]) - 1) // seq_len)
    return (
        offsets.batch(batch_size, drop_remainder=True)
        .map(to_windows, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )


def num_stream_batches(n_ids: int, seq_len: int, batch_size: int) -> int:
    """Number of batches `lm_stream_windows` yields for `n_ids` ids.

    Each of the `batch_size` tracks holds `n_ids // batch_size` ids and gives
    `(track_len - 1) // seq_len` windows (one id is kept back as the last target).

    Args:
        n_ids: length of the id sequence.
        seq_len: window length.
        batch_size: number of tracks.

    Returns:
        The batch count, 0 when the text is too short for one batch.

    Example:

    >>> num_stream_batches(1000, seq_len=10, batch_size=4)
    24
    """
    seq_len = _check_positive_int(seq_len, "seq_len")
    batch_size = _check_positive_int(batch_size, "batch_size")
    if n_ids < 0:
        raise ValueError(f"Expected a non-negative `n_ids`. Received: n_ids={n_ids}")
    track_len = n_ids // batch_size
    return max(0, (track_len - 1) // seq_len)


def lm_stream_windows(ids, seq_len: int, batch_size: int) -> tf.data.Dataset:
    """Contiguous language-model windows for truncated BPTT with carried state.

    The ids are cut into `batch_size` equal contiguous tracks (the tail that does
    not fill a track is dropped). Batch `i` holds window `i` of every track, so row
    `r` of batch `i + 1` starts exactly where row `r` of batch `i` ended: a
    stateful RNN can carry its state from one batch to the next. Windows that do
    not fill a whole batch are dropped; the batch size is static.

    Args:
        ids: 1-D integer numpy array or tensor of token ids.
        seq_len: window length.
        batch_size: number of parallel tracks (rows of every batch).

    Returns:
        A finite, ordered `tf.data.Dataset` of `num_stream_batches(len(ids), seq_len,
        batch_size)` pairs `(inputs, targets)`, int32 `[batch_size, seq_len]`.

    Raises:
        ValueError: for non-positive sizes, ids that are not 1-D integers, or too
            few ids for one batch.

    Example:

    >>> ds = lm_stream_windows(np.arange(100), seq_len=4, batch_size=2)
    >>> [x.numpy()[:, 0].tolist() for x, _ in ds][:3]
    [[0, 50], [4, 54], [8, 58]]
    """
    seq_len = _check_positive_int(seq_len, "seq_len")
    batch_size = _check_positive_int(batch_size, "batch_size")
    ids = _as_ids(ids, seq_len)
    n = int(ids.shape[0])
    num_batches = num_stream_batches(n, seq_len, batch_size)
    if num_batches == 0:
        raise ValueError(
            f"{n} ids are too few for one batch of {batch_size} tracks x {seq_len + 1} ids."
        )
    track_len = n // batch_size
    tracks = tf.reshape(ids[: batch_size * track_len], [batch_size, track_len])

    def window(i):
        start = tf.cast(i, tf.int32) * seq_len
        chunk = tf.slice(tracks, [0, start], [batch_size, seq_len + 1])
        return chunk[:, :-1], chunk[:, 1:]

    return (
        tf.data.Dataset.range(num_batches)
        .map(window, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )


def _select_component(element, key):
    """The tensor `key` picks from an element (the element, or its first component)."""
    if key is None:
        if isinstance(element, (tuple, list)):
            return element[0]
        if isinstance(element, dict):
            raise ValueError(
                "Elements are dicts; pass the key of the sequence to measure. "
                f"Keys: {sorted(element)}"
            )
        return element
    return element[key]


def _padding_values(element_spec, pad_value):
    """Padding values matching the structure and dtypes of `element_spec`."""

    def one(spec):
        if spec.dtype == tf.string:
            return tf.constant("", tf.string)
        if spec.dtype.is_integer:
            return tf.constant(pad_value, spec.dtype)
        return tf.constant(0, spec.dtype)

    return tf.nest.map_structure(one, element_spec)


def bucket_by_length(
    dataset: tf.data.Dataset,
    length_fn_or_key: Callable | int | str | None,
    boundaries: Sequence[int],
    batch_sizes: Sequence[int],
    pad_value: int = PAD_ID,
    *,
    drop_remainder: bool = False,
    pad_to_bucket_boundary: bool = False,
) -> tf.data.Dataset:
    """Batches variable-length sequences with others of similar length.

    A thin wrapper over `tf.data.Dataset.bucket_by_sequence_length`: an element
    of length `L` goes to the first bucket `i` with `L < boundaries[i]` (the last
    bucket takes the rest), and each bucket is padded to its longest element
    (or to its boundary minus one with `pad_to_bucket_boundary`). Integer
    components are padded with `pad_value`, floats with 0, strings with "".

    Args:
        dataset: unbatched elements: a 1-D tensor, or a tuple/dict of tensors
            whose sequences are 1-D (scalars such as labels are fine).
        length_fn_or_key: how to get an element's length: a function of the
            element returning a scalar int; or a tuple index / dict key whose
            component's first dimension is the length; or None for the element
            itself (or the first component of a tuple).
        boundaries: increasing upper length boundaries, e.g. `[16, 32, 64]`.
        batch_sizes: one batch size per bucket, `len(boundaries) + 1` of them.
        pad_value: id used to pad integer sequences (`PAD_ID`, i.e. 0, by default).
        drop_remainder: drop each bucket's last partial batch.
        pad_to_bucket_boundary: pad to the bucket boundary rather than the
            longest element (needs every length below the last boundary).

    Returns:
        The batched, padded dataset.

    Raises:
        ValueError: if boundaries are not strictly increasing positive integers or
            `batch_sizes` has the wrong length.

    Example:

    >>> seqs = [[5] * n for n in (3, 9, 4, 10, 2)]
    >>> ds = tf.data.Dataset.from_generator(
    ...     lambda: iter(seqs), output_signature=tf.TensorSpec([None], tf.int32))
    >>> [b.shape[1] for b in bucket_by_length(ds, None, [6], [2, 2])]
    [4, 10, 2]
    """
    boundaries = [int(b) for b in boundaries]
    if not boundaries or any(b <= 0 for b in boundaries):
        raise ValueError(f"Expected positive `boundaries`. Received: {boundaries}")
    if any(b2 <= b1 for b1, b2 in itertools.pairwise(boundaries)):
        raise ValueError(f"Expected strictly increasing `boundaries`. Received: {boundaries}")
    batch_sizes = [_check_positive_int(b, "batch_sizes") for b in batch_sizes]
    if len(batch_sizes) != len(boundaries) + 1:
        raise ValueError(
            f"Expected len(boundaries) + 1 = {len(boundaries) + 1} `batch_sizes`. "
            f"Received {len(batch_sizes)}: {batch_sizes}"
        )
    if callable(length_fn_or_key):
        length_fn = length_fn_or_key
    else:

        def length_fn(*element):
            element = element[0] if len(element) == 1 else element
            return tf.shape(_select_component(element, length_fn_or_key))[0]

    return dataset.bucket_by_sequence_length(
        element_length_func=length_fn,
        bucket_boundaries=boundaries,
        bucket_batch_sizes=batch_sizes,
        padding_values=_padding_values(dataset.element_spec, pad_value),
        pad_to_bucket_boundary=pad_to_bucket_boundary,
        drop_remainder=drop_remainder,
    )


def padding_fraction(dataset: tf.data.Dataset, key=None, pad_value: int = PAD_ID) -> float:
    """Fraction of positions in a padded, batched dataset that are padding.

    Counts positions equal to `pad_value` over all positions of the selected
    sequence tensor. This is exact when `pad_value` is reserved for padding, as
    `PAD_ID` is in every textrnn vocabulary.

    Args:
        dataset: a finite dataset of padded batches.
        key: tuple index or dict key of the sequence tensor; None for the batch
            itself or the first component of a tuple.
        pad_value: the padding id.

    Returns:
        `padded positions / total positions`, in [0, 1]; 0.0 for an empty dataset.

    Raises:
        ValueError: for an infinite dataset.

    Example:

    >>> ds = tf.data.Dataset.from_tensors(tf.constant([[1, 2, 0, 0], [3, 0, 0, 0]]))
    >>> padding_fraction(ds)
    0.625
    """
    if dataset.cardinality() == tf.data.INFINITE_CARDINALITY:
        raise ValueError("padding_fraction needs a finite dataset; call .take(n) first.")
    padded = total = 0
    for element in dataset:
        seq = _select_component(element, key)
        padded += int(tf.math.count_nonzero(tf.equal(seq, pad_value)))
        total += int(tf.size(seq))
    return padded / total if total else 0.0


def length_boundaries(lengths, num_buckets: int) -> list[int]:
    """Bucket boundaries at the quantiles of `lengths`, so buckets hold similar counts.

    Args:
        lengths: sequence lengths of the data to batch.
        num_buckets: the number of buckets wanted (fewer when lengths repeat).

    Returns:
        Strictly increasing boundaries for `bucket_by_length` (empty for one bucket).

    Example:
    >>> length_boundaries([1, 2, 3, 4, 5, 6, 7, 8], 4)
    [3, 5, 7]
    """
    num_buckets = _check_positive_int(num_buckets, "num_buckets")
    if num_buckets == 1:
        return []
    quantiles = np.quantile(np.asarray(lengths), np.linspace(0, 1, num_buckets + 1)[1:-1])
    return sorted({int(q) + 1 for q in quantiles})


def count_bucketed_batches(lengths, boundaries, batch_size: int) -> int:
    """Batches `bucket_by_length` makes of one pass (each bucket's last batch kept).

    Args:
        lengths: the sequence lengths of the dataset.
        boundaries: the bucket boundaries (empty: one bucket).
        batch_size: the batch size of every bucket.

    Returns:
        The exact batch count, so a repeated dataset can run one pass per epoch.

    Example:
    >>> count_bucketed_batches([1, 1, 1, 5, 5], [3], 2)
    3
    """
    batch_size = _check_positive_int(batch_size, "batch_size")
    bucket = np.searchsorted(np.asarray(boundaries, np.int64), np.asarray(lengths), side="right")
    return int(sum(-(-count // batch_size) for count in np.bincount(bucket) if count))


def batch_by_length(dataset, length_key, boundaries, batch_size: int, pad_value=PAD_ID):
    """Padded batches of `batch_size`, bucketed by length when `boundaries` is non-empty.

    Args:
        dataset: unbatched elements (see `bucket_by_length`).
        length_key: as `length_fn_or_key` of `bucket_by_length`.
        boundaries: bucket boundaries, e.g. from `length_boundaries`; empty: plain
            `padded_batch`.
        batch_size: elements per batch in every bucket.
        pad_value: the id integer sequences are padded with.

    Returns:
        The batched dataset.
    """
    if boundaries:
        sizes = [batch_size] * (len(boundaries) + 1)
        return bucket_by_length(dataset, length_key, boundaries, sizes, pad_value=pad_value)
    return dataset.padded_batch(
        batch_size, padding_values=_padding_values(dataset.element_spec, pad_value)
    )


def pad_rows(rows, pad_value=PAD_ID):
    """Stacks variable-length integer rows into one right-padded matrix.

    Args:
        rows: a list of 1-D integer arrays.
        pad_value: the padding id.

    Returns:
        `(padded int32 [len(rows), max length (at least 1)], lengths int32 [len(rows)])`.

    Example:
    >>> pad_rows([np.array([5, 6]), np.array([7])])[0].tolist()
    [[5, 6], [7, 0]]
    """
    lengths = np.array([len(r) for r in rows], np.int32)
    padded = np.full([len(rows), max(int(lengths.max(initial=0)), 1)], pad_value, np.int32)
    for i, row in enumerate(rows):
        padded[i, : len(row)] = row
    return padded, lengths


def encode_in_chunks(encode, texts, chunk_size: int = 4096) -> list[np.ndarray]:
    """Runs a graph encoder (strings -> ragged ids) over many texts, a chunk at a time.

    Args:
        encode: a function from a list of strings to a `tf.RaggedTensor` `[n, (ids)]`,
            e.g. a tokeniser's `tokenize`.
        texts: the texts.
        chunk_size: texts per call.

    Returns:
        One int32 numpy array of ids per text, in order.

    Example:
    >>> encode_in_chunks(lambda t: tf.strings.unicode_decode(t, "UTF-8"), ["ab", ""])
    [array([97, 98], dtype=int32), array([], dtype=int32)]
    """
    rows = []
    for start in range(0, len(texts), chunk_size):
        ids = encode(list(texts[start : start + chunk_size]))
        values = ids.flat_values.numpy().astype(np.int32)
        rows.extend(np.split(values, ids.row_splits.numpy()[1:-1]))
    return rows
