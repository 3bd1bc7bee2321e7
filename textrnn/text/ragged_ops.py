"""Small graph helpers on `tf.RaggedTensor`s shared by the text pipelines."""

from __future__ import annotations

import tensorflow as tf


def pick_rows(condition, if_true: tf.RaggedTensor, if_false: tf.RaggedTensor):
    """Row-wise choice between two ragged tensors with the same number of rows.

    Args:
        condition: bool `[batch]`.
        if_true: ragged `[batch, (n)]`, taken where `condition` is True.
        if_false: ragged `[batch, (m)]`, taken elsewhere.

    Returns:
        Ragged `[batch, (k)]` whose row `i` is `if_true[i]` or `if_false[i]`.

    Example:
        >>> pick_rows(tf.constant([True, False]), tf.ragged.constant([[1], [2]]),
        ...           tf.ragged.constant([[3, 3], [4, 4]]))
        <tf.RaggedTensor [[1], [4, 4]]>
    """
    stacked = tf.concat([if_true, if_false], axis=0)
    rows = tf.range(tf.shape(condition, out_type=tf.int64)[0])
    index = tf.where(condition, rows, rows + tf.shape(condition, out_type=tf.int64)[0])
    return tf.gather(stacked, index)
