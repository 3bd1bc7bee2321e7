"""`WordTokenizer`: word-level tokenisation inside TensorFlow graphs (and the pipeline it
shares with `textrnn.text.wordpiece_tokenizer.WordPieceTokenizer`).

Both tokenisers are `tf.Module`s built on `tf.strings` and `tensorflow_text`
ops, so they work eagerly, in `tf.data.Dataset.map`, inside `tf.function` and in
exported SavedModels: raw UTF-8 strings in, int32 ids out, and ids back to
strings. Their lookup tables are tracked attributes, so any `tf.Module` that
holds a tokeniser exports the tables with it.

Pipeline (the same for learning the vocabulary and for tokenising):

1. optional Unicode normalisation (`normalization="NFC"`, ...), with
   `tensorflow_text.normalize_utf8`;
2. optional lower-casing, with core `tf.strings.lower(..., encoding="utf-8")`,
   which lower-cases non-ASCII letters too and keeps accents ("Über" -> "über");
3. control characters become spaces; punctuation, symbols and CJK ideographs
   are split off as single-character tokens; text is split on any Unicode
   whitespace (core `tf.strings.regex_replace` and `tf.strings.split`);
4. `WordTokenizer`: each word is looked up; `WordPieceTokenizer`: each word is
   split into the longest vocabulary pieces (`##` marks a continuation) with
   `tensorflow_text.WordpieceTokenizer`. Unknown words become `UNK_ID`.

Non-core ops in the graph. Stock TensorFlow Serving links only part of
tensorflow-text, and a SavedModel must `import tensorflow_text` before loading
when it holds any of its ops. The graphs hold exactly these tensorflow-text ops
(listed by `tf_text_ops` and checked by the tests):

- `WordTokenizer`: none by default -- pure core TensorFlow;
- `WordPieceTokenizer`: `WordpieceTokenizeWithOffsets`;
- either, with `normalization` set: `NormalizeUTF8`.

Both ops belong to tensorflow-text's `ops_lib` target, which TensorFlow Serving's
model server links; the newer `Fast*` ops and `RegexSplitWithOffsets` (used by
`BertTokenizer`) are deliberately avoided. Detokenising uses only core ops.

Vocabulary files are plain UTF-8 text, one token per line, starting with the
four special tokens of `textrnn.text.special_tokens` in order. WordPiece vocabularies
are learned with `tensorflow_text.tools.wordpiece_vocab.bert_vocab_from_dataset`
from text pre-split by step 3, so learning and tokenising agree on word
boundaries.
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Iterable, Sequence

import tensorflow as tf

from textrnn.text.pretokenize import check_normalization, count_words, pretokenize
from textrnn.text.special_tokens import (
    BOS_ID,
    EOS_ID,
    NUM_SPECIAL,
    PAD_ID,
    SPECIAL_TOKENS,
    UNK,
    UNK_ID,
)
from textrnn.text.vocabulary import load_vocabulary, save_vocabulary, validate_vocabulary

CONFIG_SUFFIX = ".json"
_FORMAT_VERSION = 1


class WordTokenizer(tf.Module):
    """Word-level tokeniser: normalised words looked up in a fixed vocabulary.

    Words are split as described in the module docstring; each word is one id and
    words outside the vocabulary become `UNK_ID`. The graph is pure core
    TensorFlow unless `normalization` is set.

    Args:
        vocabulary: the tokens in id order, or the path of a vocabulary file;
            it must start with `<pad>, <unk>, <s>, </s>`.
        lowercase: lower-case text (all scripts, accents kept) before lookup.
        normalization: None, or a Unicode normalisation form applied first
            ("NFC", "NFKC", "NFD", "NFKD"); adds the `NormalizeUTF8` op.
        split_punctuation: split punctuation and symbols off as tokens of their own
            (step 3). With False, words are split on whitespace only, so punctuation
            stays attached ("bushes." -> "bushes", "##." in WordPiece) and `detokenize`
            restores the text exactly up to whitespace runs: what a translator's output
            needs.
        name: the `tf.Module` name.

    Call arguments (`tokenize`, also `__call__`):
        texts: a string scalar or 1-D batch of raw UTF-8 text.

    Returns:
        int32 ids: a 1-D tensor for a scalar, a `tf.RaggedTensor` `[batch, (ids)]`
        for a batch.

    Raises:
        VocabularyError: for an invalid vocabulary; ValueError for an unknown
            normalisation form.

    Example:

    >>> tok = WordTokenizer.learn(["Ich grüße dich.", "Él está aquí."], vocab_size=20)
    >>> tok.tokenize(["Ich grüße Sie"]).shape
    TensorShape([1, None])
    >>> tok.detokenize(tok.tokenize(["Ich grüße dich."])).numpy()[0].decode()
    'Ich grüße dich .'
    """

    _TABLE_DEFAULT = UNK_ID

    def __init__(
        self,
        vocabulary: Sequence[str] | str | os.PathLike,
        *,
        lowercase: bool = False,
        normalization: str | None = None,
        split_punctuation: bool = True,
        name: str | None = None,
    ):
        super().__init__(name=name)
        if isinstance(vocabulary, (str, os.PathLike)):
            vocabulary = load_vocabulary(vocabulary)
        self._vocabulary = tuple(validate_vocabulary(vocabulary))
        self.lowercase = bool(lowercase)
        self.split_punctuation = bool(split_punctuation)
        self.normalization = check_normalization(normalization)
        ids = tf.range(len(self._vocabulary), dtype=tf.int64)
        tokens = tf.constant(self._vocabulary, tf.string)
        self._token_to_id = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tokens, ids),
            default_value=tf.constant(self._TABLE_DEFAULT, tf.int64),
        )
        self._id_to_token = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(ids, tokens), default_value=UNK
        )

    # -- vocabulary ---------------------------------------------------------

    def vocabulary_size(self) -> int:
        """Number of tokens, special tokens included."""
        return len(self._vocabulary)

    def get_vocabulary(self) -> list[str]:
        """The tokens in id order."""
        return list(self._vocabulary)

    def token_to_id(self, token: str) -> int:
        """The id of one vocabulary token (`UNK_ID` if absent). Python-side helper."""
        try:
            return self._vocabulary.index(token)
        except ValueError:
            return UNK_ID

    def id_to_token(self, token_id: int) -> str:
        """The token of one id. Python-side helper.

        Raises:
            ValueError: for an id outside `[0, vocabulary_size())`.
        """
        if not 0 <= token_id < len(self._vocabulary):
            raise ValueError(
                f"Expected an id in [0, {len(self._vocabulary)}). Received: {token_id}"
            )
        return self._vocabulary[token_id]

    @property
    def tf_text_ops(self) -> tuple[str, ...]:
        """The tensorflow-text (non-core) op types that tokenising puts in a graph."""
        return ("NormalizeUTF8",) if self.normalization else ()

    # -- graph functions -----------------------------------------------------

    def _words_to_ids(self, words: tf.RaggedTensor) -> tf.RaggedTensor:
        return tf.ragged.map_flat_values(self._token_to_id.lookup, words)

    def _join(self, tokens: tf.RaggedTensor) -> tf.Tensor:
        return tf.strings.reduce_join(tokens, axis=-1, separator=" ")

    def tokenize(self, texts, *, add_bos: bool = False, add_eos: bool = False):
        """Converts raw strings to token ids.

        Args:
            texts: a string scalar or 1-D batch (tensor, numpy array, str or list).
            add_bos: prepend `BOS_ID` to every sequence.
            add_eos: append `EOS_ID` to every sequence.

        Returns:
            int32 ids: a 1-D tensor for a scalar input, else a
            `tf.RaggedTensor` of shape `[batch, (ids)]`.

        Raises:
            ValueError: for inputs of rank above 1.
        """
        texts = tf.convert_to_tensor(texts, tf.string)
        if texts.shape.rank == 0:
            return self.tokenize(texts[tf.newaxis], add_bos=add_bos, add_eos=add_eos)[0]
        if texts.shape.rank != 1:
            raise ValueError(f"Expected a string scalar or 1-D batch. Received {texts.shape}.")
        words = pretokenize(texts, self.lowercase, self.normalization, self.split_punctuation)
        ids = tf.cast(self._words_to_ids(words), tf.int32)
        # Text never yields a special id: "<pad>" typed in a text is an unknown word.
        ids = tf.ragged.map_flat_values(
            lambda v: tf.where((v < NUM_SPECIAL) & (v != UNK_ID), UNK_ID, v), ids
        )
        parts = [ids]
        if add_bos:
            parts.insert(0, tf.RaggedTensor.from_tensor(tf.fill([ids.nrows(), 1], BOS_ID)))
        if add_eos:
            parts.append(tf.RaggedTensor.from_tensor(tf.fill([ids.nrows(), 1], EOS_ID)))
        return tf.concat(parts, axis=1) if len(parts) > 1 else ids

    __call__ = tokenize

    def ids_to_tokens(self, ids):
        """The vocabulary token of every id, in the graph (`<unk>` outside the vocabulary).

        Args:
            ids: integer ids, a dense tensor or a `tf.RaggedTensor`.

        Returns:
            String tokens with the shape (and ragged structure) of `ids`.
        """
        if isinstance(ids, tf.RaggedTensor):
            return tf.ragged.map_flat_values(self.ids_to_tokens, ids)
        return self._id_to_token.lookup(tf.cast(ids, tf.int64))

    def detokenize(self, ids, *, stop_at_eos: bool = True) -> tf.Tensor:
        """Converts token ids back to text.

        Special tokens are dropped: padding, `<s>` and `</s>` never appear, and
        with `stop_at_eos` everything after the first `</s>` of a row is dropped
        too. Unknown ids render as `<unk>`. Words are joined with single spaces,
        so text comes back normalised ("Hi, you" -> "Hi , you").

        Args:
            ids: integer ids: 1-D (one sequence), or 2-D dense (padded with
                `PAD_ID`) or ragged `[batch, (ids)]`.
            stop_at_eos: drop the first `</s>` of each row and all that follows.

        Returns:
            A string scalar for 1-D input, else a `[batch]` string tensor.
        """
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.convert_to_tensor(ids)
            if ids.shape.rank == 1:
                return self.detokenize(ids[tf.newaxis], stop_at_eos=stop_at_eos)[0]
            ids = tf.RaggedTensor.from_tensor(ids)
        ids = tf.cast(ids, tf.int64)
        keep = tf.logical_and(
            tf.logical_and(tf.not_equal(ids, PAD_ID), tf.not_equal(ids, BOS_ID)),
            tf.not_equal(ids, EOS_ID),
        )
        if stop_at_eos:
            dense = ids.to_tensor(default_value=PAD_ID)
            seen_eos = tf.cumsum(tf.cast(tf.equal(dense, EOS_ID), tf.int32), axis=1)
            before_eos = tf.RaggedTensor.from_tensor(
                tf.equal(seen_eos, 0), lengths=ids.row_lengths()
            )
            keep = tf.logical_and(keep, before_eos)
        kept = tf.ragged.boolean_mask(ids, keep)
        tokens = tf.ragged.map_flat_values(self._id_to_token.lookup, kept)
        return self._join(tokens)

    # -- configuration and persistence --------------------------------------

    def get_config(self) -> dict:
        """The constructor arguments, vocabulary included."""
        return {
            "vocabulary": self.get_vocabulary(),
            "lowercase": self.lowercase,
            "split_punctuation": self.split_punctuation,
            "normalization": self.normalization,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config: dict):
        """Builds a tokeniser from `get_config()` output."""
        return cls(**config)

    def save(self, path: str | os.PathLike) -> pathlib.Path:
        """Writes the vocabulary file at `path` and the options beside it.

        The options (everything in `get_config()` but the vocabulary, plus the
        class) go to `<path>.json`, so `load(path)` rebuilds the same tokeniser.

        Returns:
            The vocabulary path.
        """
        path = save_vocabulary(self._vocabulary, path)
        config = self.get_config()
        config.pop("vocabulary")
        config.pop("name")
        config = {"class": type(self).__name__, "format": _FORMAT_VERSION, **config}
        config_path = path.with_name(path.name + CONFIG_SUFFIX)
        config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, **overrides):
        """Loads a tokeniser written by `save`.

        Args:
            path: the vocabulary file. Options come from `<path>.json` when it
                exists, else from the constructor defaults.
            **overrides: constructor options that replace the saved ones.

        Raises:
            VocabularyError: for an invalid vocabulary file; ValueError when the
                options file names another tokeniser class.
        """
        path = pathlib.Path(path)
        options = {}
        config_path = path.with_name(path.name + CONFIG_SUFFIX)
        if config_path.is_file():
            options = json.loads(config_path.read_text(encoding="utf-8"))
            saved_class = options.pop("class", cls.__name__)
            options.pop("format", None)
            if saved_class != cls.__name__:
                raise ValueError(
                    f"{path} was saved by {saved_class}, not {cls.__name__}; use "
                    f"{saved_class}.load() or load_tokenizer()."
                )
        options.update(overrides)
        return cls(load_vocabulary(path), **options)

    # -- learning -----------------------------------------------------------

    @classmethod
    def learn(
        cls,
        texts: Iterable[str] | tf.data.Dataset,
        vocab_size: int,
        *,
        lowercase: bool = False,
        normalization: str | None = None,
        split_punctuation: bool = True,
        min_count: int = 1,
        name: str | None = None,
    ) -> WordTokenizer:
        """Builds a word vocabulary from training text.

        Keeps the `vocab_size - 4` most frequent words seen at least `min_count`
        times (ties broken alphabetically, so the result is deterministic).

        Args:
            texts: training strings, or a dataset of string scalars or batches.
            vocab_size: maximum vocabulary size, special tokens included.
            lowercase: as in the constructor; the vocabulary is learned with it.
            normalization: as in the constructor.
            min_count: minimum word frequency.
            name: the `tf.Module` name.

        Returns:
            A `WordTokenizer` with the learned vocabulary.

        Raises:
            ValueError: if `vocab_size <= 4`, `min_count < 1`, or no word is found.
        """
        if vocab_size <= NUM_SPECIAL:
            raise ValueError(f"Expected vocab_size > {NUM_SPECIAL}. Received: {vocab_size}")
        if min_count < 1:
            raise ValueError(f"Expected min_count >= 1. Received: {min_count}")
        check_normalization(normalization)
        counts = count_words(texts, lowercase, normalization, split_punctuation)
        ranked = sorted(
            (w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w)
        )
        if not ranked:
            raise ValueError("No words found in the training text.")
        vocabulary = list(SPECIAL_TOKENS) + ranked[: vocab_size - NUM_SPECIAL]
        return cls(
            vocabulary,
            lowercase=lowercase,
            normalization=normalization,
            split_punctuation=split_punctuation,
            name=name,
        )
