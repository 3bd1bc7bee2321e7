"""The text splitting shared by the word and WordPiece tokenisers, in the graph.

Steps 1-3 of the pipeline in `textrnn.text.word_tokenizer`: optional Unicode
normalisation, optional lower-casing, then punctuation, symbols and CJK ideographs split
off and text split on any Unicode whitespace. Learning a vocabulary (`count_words`) and
tokenising (`pretokenize`) split text the same way, so they agree on word boundaries.

Example:
    >>> pretokenize(["Hello, world!"], lowercase=True, normalization=None)
    <tf.RaggedTensor [[b'hello', b',', b'world', b'!']]>
"""

from __future__ import annotations

import collections

import tensorflow as tf
import tensorflow_text as tf_text

from textrnn.text.special_tokens import SPECIAL_TOKENS

NORMALIZATION_FORMS = ("NFC", "NFKC", "NFD", "NFKD")

# Characters split off as their own tokens: ASCII punctuation, Unicode punctuation
# and symbols, and CJK ideographs (the ranges BERT's BasicTokenizer splits off).
_SPLIT_OFF = (
    r"([!-/:-@\[-`{-~]|\p{P}|\p{S}|[\x{4E00}-\x{9FFF}]|[\x{3400}-\x{4DBF}]"
    r"|[\x{20000}-\x{2A6DF}]|[\x{2A700}-\x{2B73F}]|[\x{2B740}-\x{2B81F}]"
    r"|[\x{2B820}-\x{2CEAF}]|[\x{F900}-\x{FAFF}]|[\x{2F800}-\x{2FA1F}])"
)
_SPACES = r"[\s\p{Z}\p{Cc}\p{Cf}]+"


def check_normalization(normalization):
    if normalization is not None and normalization not in NORMALIZATION_FORMS:
        raise ValueError(
            f"Expected `normalization` in {NORMALIZATION_FORMS} or None. "
            f"Received: normalization={normalization!r}"
        )
    return normalization


def pretokenize(texts, lowercase: bool, normalization: str | None, split_punctuation=True):
    """Normalises and splits strings into words: `[...]` -> `[..., (words)]`."""
    texts = tf.convert_to_tensor(texts, tf.string)
    if normalization:
        texts = tf_text.normalize_utf8(texts, normalization)
    if lowercase:
        texts = tf.strings.lower(texts, encoding="utf-8")
    if split_punctuation:
        texts = tf.strings.regex_replace(texts, _SPLIT_OFF, r" \1 ")
    texts = tf.strings.regex_replace(texts, _SPACES, " ")
    return tf.strings.split(tf.strings.strip(texts))


def count_words(texts, lowercase, normalization, split_punctuation) -> collections.Counter:
    """Word frequencies of training text, split exactly as tokenising splits it.

    Special-token strings are never counted as words (text never yields special ids).
    """
    counts: collections.Counter = collections.Counter()
    for batch in as_text_dataset(texts):
        words = pretokenize(batch, lowercase, normalization, split_punctuation)
        counts.update(w.decode("utf-8") for w in words.flat_values.numpy().tolist())
    for token in SPECIAL_TOKENS:
        counts.pop(token, None)
    return counts


def as_text_dataset(texts) -> tf.data.Dataset:
    """A dataset of 1-D string batches from a dataset or an iterable of str."""
    if isinstance(texts, tf.data.Dataset):
        if texts.element_spec.shape.rank == 0:
            texts = texts.batch(256)
        return texts
    texts = [t.decode("utf-8") if isinstance(t, bytes) else t for t in texts]
    return tf.data.Dataset.from_tensor_slices(tf.constant(texts, tf.string)).batch(256)
