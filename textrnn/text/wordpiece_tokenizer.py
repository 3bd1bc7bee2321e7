"""`WordPieceTokenizer`: WordPiece subword tokenisation inside TensorFlow graphs, with the
tensorflow-text op `WordpieceTokenizeWithOffsets` (see `textrnn.text.word_tokenizer` for
the shared pipeline and the non-core ops of each tokeniser)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import tensorflow as tf
import tensorflow_text as tf_text

from textrnn.text.pretokenize import check_normalization, count_words
from textrnn.text.special_tokens import NUM_SPECIAL, SPECIAL_TOKENS, UNK
from textrnn.text.word_tokenizer import WordTokenizer

SUFFIX_INDICATOR = "##"


class WordPieceTokenizer(WordTokenizer):
    """WordPiece subword tokeniser: words split into the longest vocabulary pieces.

    Words are split as in `WordTokenizer`; each word then becomes the greedy
    longest-match-first sequence of vocabulary pieces, continuation pieces
    carrying the `##` prefix ("Straßenbahn" -> "Straßen", "##bahn"). A word that
    cannot be covered (or is longer than `max_bytes_per_word`) becomes one
    `UNK_ID`. Uses the tensorflow-text op `WordpieceTokenizeWithOffsets`.

    Args:
        vocabulary: tokens in id order or a vocabulary file path, starting with
            the special tokens; continuation pieces start with `##`.
        lowercase: lower-case text (accents kept) before splitting.
        normalization: None or a Unicode normalisation form ("NFC", ...).
        split_punctuation: as in `WordTokenizer`; False keeps punctuation in the word,
            where WordPiece splits it off as a `##` piece, so detokenising is exact.
        max_bytes_per_word: longer words become `UNK_ID`.
        name: the `tf.Module` name.

    Example:

    >>> texts = ["Die Straßenbahn fährt.", "Die Straße ist nass."] * 10
    >>> tok = WordPieceTokenizer.learn(texts, vocab_size=60, lowercase=True)
    >>> tok.detokenize(tok.tokenize("Die Straßenbahn")).numpy().decode()
    'die straßenbahn'
    """

    _TABLE_DEFAULT = -1  # the WordPiece kernel treats -1 as "not in the vocabulary"

    def __init__(
        self,
        vocabulary: Sequence[str] | str | os.PathLike,
        *,
        lowercase: bool = False,
        normalization: str | None = None,
        split_punctuation: bool = True,
        max_bytes_per_word: int = 100,
        name: str | None = None,
    ):
        super().__init__(
            vocabulary,
            lowercase=lowercase,
            normalization=normalization,
            split_punctuation=split_punctuation,
            name=name,
        )
        if max_bytes_per_word <= 0:
            raise ValueError(
                f"Expected a positive integer for `max_bytes_per_word`. "
                f"Received: max_bytes_per_word={max_bytes_per_word}"
            )
        self.max_bytes_per_word = int(max_bytes_per_word)
        self._wordpiece = tf_text.WordpieceTokenizer(
            self._token_to_id,
            suffix_indicator=SUFFIX_INDICATOR,
            max_bytes_per_word=self.max_bytes_per_word,
            token_out_type=tf.int64,
            unknown_token=UNK,
        )

    @property
    def tf_text_ops(self) -> tuple[str, ...]:
        """The tensorflow-text (non-core) op types that tokenising puts in a graph."""
        return super().tf_text_ops + ("WordpieceTokenizeWithOffsets",)

    def _words_to_ids(self, words: tf.RaggedTensor) -> tf.RaggedTensor:
        return self._wordpiece.tokenize(words).merge_dims(-2, -1)

    def _join(self, tokens: tf.RaggedTensor) -> tf.Tensor:
        text = tf.strings.reduce_join(tokens, axis=-1, separator=" ")
        text = tf.strings.regex_replace(text, " " + SUFFIX_INDICATOR, "")
        return tf.strings.regex_replace(text, "^" + SUFFIX_INDICATOR, "")

    def get_config(self) -> dict:
        """The constructor arguments, vocabulary included."""
        return {**super().get_config(), "max_bytes_per_word": self.max_bytes_per_word}

    @classmethod
    def learn(
        cls,
        texts: Iterable[str] | tf.data.Dataset,
        vocab_size: int,
        *,
        lowercase: bool = False,
        normalization: str | None = None,
        split_punctuation: bool = True,
        learn_params: dict | None = None,
        name: str | None = None,
    ) -> WordPieceTokenizer:
        """Learns a WordPiece vocabulary from training text.

        Counts the words of the text after steps 1-3 of the module docstring
        (split exactly as `tokenize` splits them) and runs tensorflow-text's
        WordPiece learner (`wordpiece_tokenizer_learner_lib.learn`, the algorithm
        behind `bert_vocab_from_dataset`) on the counts, with reserved tokens
        `<pad>, <unk>, <s>, </s>`. The learner keeps every character seen (alone
        and as `##` piece), so `vocab_size` is a target, not a guarantee: a text
        with many distinct characters may yield more tokens, and pieces seen fewer
        than `lower_thresh` (10) times are left out, so a small text may yield fewer.

        Args:
            texts: training strings, or a dataset of string scalars or batches.
            vocab_size: target vocabulary size, special tokens included.
            lowercase: as in the constructor; the vocabulary is learned with it.
            normalization: as in the constructor.
            split_punctuation: as in the constructor.
            learn_params: extra arguments for the learner (e.g.
                `{"lower_thresh": 5}`); see
                `tensorflow_text.tools.wordpiece_vocab.wordpiece_tokenizer_learner_lib.learn`.
            name: the `tf.Module` name.

        Returns:
            A `WordPieceTokenizer` with the learned vocabulary.

        Raises:
            ValueError: if `vocab_size <= 4` or no word is found.
        """
        from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib

        if vocab_size <= NUM_SPECIAL:
            raise ValueError(f"Expected vocab_size > {NUM_SPECIAL}. Received: {vocab_size}")
        check_normalization(normalization)

        counts = count_words(texts, lowercase, normalization, split_punctuation)
        if not counts:
            raise ValueError("No words found in the training text.")
        vocabulary = wordpiece_tokenizer_learner_lib.learn(
            counts, vocab_size, list(SPECIAL_TOKENS), **dict(learn_params or {})
        )
        if len(vocabulary) <= NUM_SPECIAL:
            raise ValueError("No words found in the training text.")
        return cls(
            vocabulary,
            lowercase=lowercase,
            normalization=normalization,
            split_punctuation=split_punctuation,
            name=name,
        )
