"""Text to ids for the sentiment classifier: tokenise, truncate by the recipe's policy,
never empty. Training, evaluation, the predictor and the export all encode this way.

Documented behaviour: a text without tokens becomes one `<unk>`; text longer than
`max_length` tokens is cut by the truncation policy (`"head"`, `"tail"` or `"head_tail"`,
the first quarter and the last three quarters); invalid UTF-8 becomes U+FFFD.

Example:
    >>> encode_texts(tokenizer, ["a gem of a film", ""], max_length=256)
    <tf.RaggedTensor [[5, 812, 7, 5, 21], [1]]>
"""

from __future__ import annotations

import tensorflow as tf

from textrnn.data import pipelines
from textrnn.text.ragged_ops import pick_rows
from textrnn.text.special_tokens import UNK_ID

TRUNCATION_POLICIES = ("head", "tail", "head_tail")


def truncate(ids: tf.RaggedTensor, max_length: int, policy: str = "head") -> tf.RaggedTensor:
    """Cuts every row of `ids` to at most `max_length` tokens.

    Args:
        ids: ragged ids `[batch, (tokens)]`.
        max_length: the most tokens a row keeps.
        policy: `"head"` (first tokens), `"tail"` (last tokens) or `"head_tail"` (the first
            `max_length // 4` and the last `max_length - max_length // 4`).

    Returns:
        The truncated ragged ids; rows already short enough are unchanged.

    Example:
        >>> truncate(tf.ragged.constant([[1, 2, 3, 4, 5, 6, 7, 8, 9]]), 4, "head_tail")
        <tf.RaggedTensor [[1, 7, 8, 9]]>
    """
    if policy not in TRUNCATION_POLICIES:
        raise ValueError(
            f"Expected `truncation` in {TRUNCATION_POLICIES}. Received: truncation={policy!r}"
        )
    if not isinstance(max_length, int) or max_length < 1:
        raise ValueError(f"Expected a positive integer `max_length`. Received: {max_length!r}")
    if policy == "head":
        return ids[:, :max_length]
    if policy == "tail":
        return ids[:, -max_length:]
    head = max_length // 4
    long_rows = ids.row_lengths() > max_length
    cut = tf.concat([ids[:, :head], ids[:, head - max_length :]], axis=1)
    return pick_rows(long_rows, cut, ids)


def encode_texts(tokenizer, texts, max_length: int, truncation: str = "head"):
    """Raw strings -> ragged int32 ids, ready for a `SentimentClassifier`.

    Invalid UTF-8 becomes U+FFFD, text is tokenised, truncated by `truncation`, and a text
    without tokens becomes one `UNK_ID`, so no row is empty (an all-padding row would be
    meaningless to the recurrent layers).

    Args:
        tokenizer: a `WordTokenizer` or `WordPieceTokenizer`.
        texts: 1-D string tensor (or list of str).
        max_length: tokens kept per text.
        truncation: a policy of `truncate`.

    Returns:
        int32 `tf.RaggedTensor` `[batch, (tokens)]`, every row of length 1..max_length.
    """
    texts = tf.convert_to_tensor(texts, tf.string)
    texts = tf.strings.unicode_transcode(
        texts, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD
    )
    ids = truncate(tokenizer.tokenize(texts), max_length, truncation)
    empty = ids.row_lengths() == 0
    unk = tf.RaggedTensor.from_tensor(tf.fill([tf.shape(empty)[0], 1], UNK_ID))
    return pick_rows(empty, unk, ids)


def encode_split(tokenizer, texts, data):
    """Tokenises a whole split once: a list of int32 numpy arrays (one per text)."""
    return pipelines.encode_in_chunks(
        lambda chunk: encode_texts(tokenizer, chunk, data.max_length, data.truncation), texts
    )
